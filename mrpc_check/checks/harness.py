"""The battery's bench: tiny data and models, runs of an adapter under observation, shared by checks.

A :class:`Battery` holds one adapter and one architecture. ``battery.run(name, recipe, ...)``
trains a fresh model through the adapter while an :class:`~mrpc_check.checks.observe.Observer`
watches, and caches the result under ``name`` so that several checks read one run.

The data are MRPC-shaped synthetic pairs chosen so that every boundary case is present at the
base recipe (batch 4, accumulation 2): 22 training rows make micro-batches [4, 4, 4, 4, 4, 2],
so each epoch's last optimizer step has an uneven micro-batch; 10 evaluation rows make an
evaluation batch of 2 at the end. Models are built with dropout 0 so that a gradient can be
recomputed outside the loop and compared.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import random
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch

from mrpc_check.checks.contract import Adapter, AdapterError, LoopOutput, Recipe, adapter_name, capabilities, normalise_output
from mrpc_check.checks.observe import Observation, Observer, RowIndex

N_TRAIN = 22  # batch 4 -> [4, 4, 4, 4, 4, 2]: an uneven last micro-batch in every epoch
N_EVAL = 30  # eval batch 4 -> [4] * 7 + [2]: an uneven last batch; enough rows for the label control
MAX_LENGTH = 40
# What the battery's figures mean at the walkthrough's data: MRPC's 3,668 training pairs, batch 8.
MRPC_TRAIN, MRPC_BATCH = 3668, 8

# The recipe every run starts from. Warmup of 2 of the 6 optimizer steps puts each phase of
# the linear schedule (0 at step 1, peak at step 3, decay to exactly 0) inside the run.
BASE = Recipe(epochs=2, batch_size=4, eval_batch_size=4, grad_accum=2, lr=1e-3, warmup_steps=2, seed=1)
# Optimizer steps of the base run whose gradients and weights are copied: 1 and 2 (even groups),
# 3 and 6 (each epoch's last group, micro-batches [4, 2]; at 6 the weights have moved).
CAPTURE = (1, 2, 3, 6)


@dataclass
class Arch:
    """A tiny model family: its tokenizer and a factory of freshly initialised models (no dropout)."""

    name: str
    tokenizer: Any
    make_model: Callable[[int], torch.nn.Module]  # seed -> model, identical for identical seeds
    _data: Any = field(default=None, repr=False, compare=False)

    def data(self):
        """The battery's tokenized pairs (:func:`make_data`), made once per family; a fresh view for each caller.

        Tokenizing them is a tenth of a small battery; every battery over this family gets the same
        rows anyway. Each call returns new Dataset objects over the same Arrow tables, so a loop that
        changes its dataset's format in place changes its own battery's view only.
        """
        if self._data is None:
            with quiet():  # datasets' map progress bars
                self._data = make_data(self.tokenizer)
        return {split: dataset.with_format("torch") for split, dataset in self._data.items()}


def bert_arch(tokenizer=None) -> Arch:
    """Tiny BERT (2 layers, width 32) over the real bert-base-uncased WordPiece vocabulary."""
    from mrpc_check.pipeline.model import load_tokenizer, resolve_checkpoint
    from mrpc_check.testing import make_tiny_model

    tokenizer = tokenizer or load_tokenizer(resolve_checkpoint("minilm"))

    def make(seed: int = 0):
        return make_tiny_model(len(tokenizer), seed=seed, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)

    return Arch("bert", tokenizer, make)


def tiny_arch(kind: str) -> Arch:
    """Tiny RoBERTa or DistilBERT (dropout 0) with a tokenizer trained here on synthetic text."""
    from mrpc_check.testing import make_tiny, train_tokenizer

    tokenizer = train_tokenizer(kind)

    def make(seed: int = 0):
        return make_tiny(kind, tokenizer, seed=seed, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)

    return Arch(kind, tokenizer, make)


ARCHES = {"bert": bert_arch, "roberta": lambda: tiny_arch("roberta"), "distilbert": lambda: tiny_arch("distilbert")}


@dataclass
class Run:
    """One observed run of the adapter."""

    name: str
    recipe: Recipe
    observation: Observation
    output: Optional[LoopOutput]  # None when the adapter raised
    model: torch.nn.Module  # the model after training (trained in place)
    initial: dict  # parameter name -> initial weights
    train_labels: list  # the labels the loop was given (permuted in the label-control run)
    error: Optional[BaseException] = None
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class LossForm:
    """A cross-entropy as a loop computes it: label smoothing and class weights (plain when neither)."""

    label_smoothing: float = 0.0
    class_weights: Optional[tuple] = None  # one weight per class, or None

    @property
    def plain(self) -> bool:
        return self.label_smoothing == 0.0 and not self.class_weights


class Interrupted(BaseException):
    """Raised from the optimizer hook to stand in for a kill (BaseException: loops must not catch it)."""


def make_data(tokenizer, seed: int = 0):
    """Tokenized synthetic MRPC: N_TRAIN training and N_EVAL evaluation rows, all distinct."""
    from mrpc_check.testing import synthetic_mrpc
    from mrpc_check.pipeline.tokenize import tokenize_dataset

    for attempt in range(20):
        data = tokenize_dataset(synthetic_mrpc(N_TRAIN, N_EVAL, seed=seed + attempt), tokenizer, max_length=MAX_LENGTH)
        ids = [tuple(x) for split in data.values() for x in split.with_format(None)["input_ids"]]
        if len(set(ids)) == len(ids):
            return data
    raise RuntimeError("could not draw distinct synthetic pairs")  # pragma: no cover - 20 draws never all collide


class Battery:
    """One adapter, one architecture, and the runs its checks share.

    Args:
        adapter: the loop under test (see :mod:`mrpc_check.checks.contract`).
        arch: the tiny model family (tiny BERT over the real vocabulary by default).
        base: the recipe every run varies.
    """

    def __init__(self, adapter: Adapter, arch: Optional[Arch] = None, base: Recipe = BASE) -> None:
        from mrpc_check.pipeline.batching import make_collator

        self.adapter = adapter
        self.name = adapter_name(adapter)
        self.caps = capabilities(adapter, self.name)  # AdapterError on an unknown feature name
        self.spec = getattr(adapter, "mrpc_spec", None)  # how another process imports it (set by load_adapter)
        self.arch = arch or bert_arch()
        # A declared-absent feature is never varied: every run starts from its neutral value.
        self.base = self.caps.neutral(base)
        self.data = self.arch.data()
        pad = self.arch.tokenizer.pad_token_id
        self.rows = RowIndex({"train": self.data["train"], "validation": self.data["validation"]}, pad if pad is not None else 0)
        self.collator = make_collator(self.arch.tokenizer)
        # Plain-python views, made once: single() reads them for every example the oracles recompute.
        self._plain = {split: dataset.with_format(None) for split, dataset in self.data.items()}
        self.train_labels = self._plain["train"]["labels"]
        self.eval_labels = self._plain["validation"]["labels"]
        self.has_token_types = "token_type_ids" in self.data["train"].column_names
        self._runs: dict[str, Run] = {}
        self._prototypes: dict[int, torch.nn.Module] = {}
        self._gradients: dict = {}  # reference gradients by (weights, rows, labels): see reference_gradient
        self.verdicts: dict = {}  # check name -> Verdict, judged once (mrpc_check.checks.verdict.judge)
        self._tmp: Optional[str] = None  # made by the first workdir(): most batteries never need one

    @property
    def resumable(self) -> bool:
        return self.caps.resumable

    def fresh_model(self, seed: int = 0) -> torch.nn.Module:
        """A freshly initialised model: a copy of the first one built for ``seed`` (make_model is deterministic).

        Copying is 3x faster than initialising, and a verify builds about 17 models.
        """
        if seed not in self._prototypes:
            self._prototypes[seed] = self.arch.make_model(seed)
        return copy.deepcopy(self._prototypes[seed])

    def declares(self, feature: str) -> bool:
        """Whether the loop implements recipe ``feature`` (all do unless ``supports`` leaves it out)."""
        return feature in self.caps.features

    def close(self) -> None:
        """Remove the folder that resume and 2-process runs wrote in (the runs stay cached)."""
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> "Battery":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def base_run(self) -> "Run":
        """The run most checks read: the base recipe, gradients copied at CAPTURE steps."""
        return self.run("base", capture=CAPTURE)

    def workdir(self, name: str) -> str:
        if self._tmp is None:
            self._tmp = tempfile.mkdtemp(prefix="mrpc-battery-")
        path = os.path.join(self._tmp, name)
        os.makedirs(path, exist_ok=True)
        return path

    def run(
        self,
        name: str,
        recipe: Optional[Recipe] = None,
        *,
        collator=None,
        train_labels: Optional[list] = None,
        train_rows: Optional[int] = None,
        capture: tuple = (),
        interrupt_after: Optional[int] = None,
        model_seed: int = 0,
        start_model: Optional[torch.nn.Module] = None,
        poison_first_backward: bool = False,
        share: bool = True,
    ) -> Run:
        """Train a fresh model through the adapter under observation; cached under ``name``.

        Args:
            name: cache key: a second call with the same name returns the first run.
            recipe: the recipe (the base one when None).
            collator: another collator (padding invariance), else the default dynamic padding.
            train_labels: replace the training labels (label control).
            train_rows: hand over only the first this many training rows (label control).
            capture: optimizer steps whose gradients and starting weights are copied.
            interrupt_after: stop the run when optimizer step ``k + 1`` is about to happen.
            model_seed: initialisation of the fresh model.
            start_model: train this model instead of a fresh one (a resumed run).
            poison_first_backward: make the first backward's gradients infinite (fp16 skip test).
            share: reuse an earlier run of the same recipe (False for a deliberate repeat: the seed check's).

        Raises:
            AdapterError: the adapter returned something that is not predictions.
        """
        if name in self._runs:
            return self._runs[name]
        recipe = self.caps.neutral(recipe or self.base)
        plain = (share and collator is None and train_labels is None and train_rows is None and interrupt_after is None
                 and start_model is None and not poison_first_backward)
        if plain:
            # Two checks' variants may come out identical once declared-absent features are neutral
            # (the clipping run of a loop that neither clips nor warms up is the base run): train once.
            for other in self._runs.values():
                if (isinstance(other, Run) and other.extra.get("plain") and other.recipe == recipe
                        and other.extra.get("model_seed") == model_seed and set(capture) <= set(other.extra.get("capture", ()))):
                    self._runs[name] = other
                    return other
        train = self.data["train"]
        labels = list(self.train_labels)
        if train_rows is not None:
            train = train.select(range(train_rows))
            labels = labels[:train_rows]
        if train_labels is not None:
            train = train.remove_columns("labels").add_column("labels", list(train_labels))
            train.set_format("torch")
            labels = list(train_labels)
        model = start_model if start_model is not None else self.fresh_model(model_seed)
        model.eval()  # from_pretrained hands over a model in eval mode: a loop must switch to train itself
        initial = {n: p.detach().clone() for n, p in model.named_parameters()}
        # A loop that ignores recipe.seed inherits whatever the global generators hold: make that
        # different on every run, so "same seed, same result" cannot pass by accident.
        ambient = random.SystemRandom().randrange(2**31)
        torch.manual_seed(ambient)
        random.seed(ambient)
        observer = Observer(model, self.rows, capture=capture)
        hook = None
        if interrupt_after is not None:
            from torch.optim.optimizer import register_optimizer_step_pre_hook

            taken = {"n": 0}

            def stop(optimizer, args, kwargs):
                if isinstance(getattr(optimizer, "optimizer", None), torch.optim.Optimizer):
                    return  # a wrapper: its inner optimizer reports the same step
                taken["n"] += 1
                if taken["n"] > interrupt_after:
                    raise Interrupted(f"interrupted before optimizer step {interrupt_after + 1}")

            hook = register_optimizer_step_pre_hook(stop)
        if poison_first_backward:
            param = [p for p in model.parameters() if p.requires_grad][-1]
            calls = {"n": 0}

            def overflow(grad):
                calls["n"] += 1
                return grad * float("inf") if calls["n"] == 1 else grad

            param.register_hook(overflow)
        output, error = None, None
        _reset_accelerate()  # state another Accelerator left in this process must not leak into the run
        try:
            with observer, quiet():
                value = self.adapter(model, train, self.data["validation"], collator or self.collator, recipe)
            output = normalise_output(value, len(self.eval_labels), self.name)
        except AdapterError:
            raise
        except Interrupted as exc:
            error = exc
        except Exception as exc:  # the loop itself failed: a verdict, not a crash of the battery
            error = exc
        finally:
            if hook is not None:
                hook.remove()
            _reset_accelerate()
        run = Run(name, recipe, observer.observation, output, model, initial, labels, error,
                  extra={"plain": plain, "model_seed": model_seed, "capture": tuple(capture)})
        self._runs[name] = run
        return run

    # -- oracles computed outside the loop ------------------------------------------------------
    def reference_gradient(self, weights: dict, rows: list, labels: list, loss: Optional["LossForm"] = None,
                           run: Optional["Run"] = None, scale: float = 1.0) -> dict:
        """Gradient of the mean cross-entropy over ``rows`` at ``weights``, one unpadded example at a time.

        ``labels`` are the training labels the run was given (permuted in the label control); a
        validation row a loop trained on takes its own label, so the gradient judged is the one
        of the rows the loop really fed (feeding them is the label control's finding, not this one's).
        ``loss``: the loop's own cross-entropy when the effective recipe found one (label smoothing,
        class weights; :mod:`mrpc_check.checks.effective`), as torch defines it over ``rows``.
        ``run``: the run ``weights`` were captured in; where its loop added tensors to the model (LoRA
        matrices, a copy of the head), the gradient is recomputed on a copy of that run's model instead.
        ``scale``: the weight of these rows in their optimizer step (len(rows) / the step's rows). The result is the
        gradient times ``scale``; under autocast the loss is scaled before backward, as a correct loop does it,
        since scaling inside a bf16 backward rounds otherwise than scaling after it.
        """
        loss = loss if loss is not None and not loss.plain else None
        autocast = run is not None and run.observation.autocast is not None
        key = (id(weights), tuple(rows), id(labels), loss, scale if autocast else None)  # checks ask for the same micro-batches
        if key not in self._gradients:
            # The inputs are kept with the result: alive, their ids cannot be reused by other objects.
            self._gradients[key] = (weights, labels, self._reference_gradient(weights, rows, labels, loss, run,
                                                                              scale if autocast else 1.0))
        found = self._gradients[key][2]
        # In full precision the unscaled gradient is kept (one per micro-batch, whatever its weight) and scaled here.
        return {n: g * scale for n, g in found.items()} if not autocast and scale != 1.0 else found

    def model_at(self, weights: dict, run: Optional["Run"] = None) -> tuple:
        """A copy of the model with ``weights`` (the captured ones of a step) loaded, in eval mode, and its named tensors.

        Returns ``(model, named)``: ``named`` maps the observer's names to the copy's tensors. A fresh model
        unless ``run``'s loop added tensors to the model it trained (then a copy of that model: the names the
        observer gave every tensor find their copies through deepcopy's memo, whatever the loop renamed).
        """
        if run is not None and run.observation.added and not run.observation.outside:
            memo: dict = {}
            model = copy.deepcopy(run.model, memo)
            named = {n: memo[id(t)] for n, t in run.observation.tensors.items() if id(t) in memo}
        else:
            model = self.fresh_model(0)
            named = dict(model.named_parameters())
        with torch.no_grad():
            for name, param in named.items():
                if name in weights:  # frozen parameters are not in the optimizer, so not captured
                    param.copy_(weights[name])
        model.eval()  # dropout is 0 anyway; eval makes that explicit
        model.zero_grad(set_to_none=True)
        return model, named

    def label_of(self, row: tuple, labels: list) -> int:
        split, index = row
        return labels[index] if split == "train" else self.eval_labels[index]

    def _reference_gradient(self, weights: dict, rows: list, labels: list, loss: Optional["LossForm"] = None,
                            run: Optional["Run"] = None, scale: float = 1.0) -> dict:
        model, named = self.model_at(weights, run)
        if run is not None and run.observation.autocast is not None:
            # Under autocast the per-example fp32 gradient is no oracle: bf16's rounding moved it by up to 39 % of its
            # norm on a small-gradient step here. Recomputed as a correct loop computes it, at the same precision (the
            # rows as one micro-batch, the collator's padding and mask, the same autocast), it equals the loop's bit for
            # bit (measured 0.0 at every captured step of a correct bf16 loop); a bug still moves it.
            device, dtype = run.observation.autocast
            batch = self.collator([self._features(split, index, labels) for split, index in rows])
            with torch.autocast(device, dtype=getattr(torch, dtype)):
                out = model(**batch)
                if loss is None:
                    value = out.loss
                else:
                    weight = torch.tensor(loss.class_weights) if loss.class_weights else None
                    value = torch.nn.functional.cross_entropy(out.logits.float(), batch["labels"], weight=weight,
                                                              label_smoothing=loss.label_smoothing)
            (value * scale).backward() if scale != 1.0 else value.backward()
        elif loss is None:
            for split, index in rows:
                logits = model(**self.single(split, index)).logits  # (1, num_labels)
                ce = torch.nn.functional.cross_entropy(logits, torch.tensor([self.label_of((split, index), labels)])) / len(rows)
                ce.backward()
        else:
            # torch's weighted or smoothed mean is not a plain mean of per-row losses: one loss over the stacked rows.
            logits = torch.cat([model(**self.single(split, index)).logits for split, index in rows])  # (rows, num_labels)
            target = torch.tensor([self.label_of(r, labels) for r in rows])
            weight = torch.tensor(loss.class_weights) if loss.class_weights else None
            torch.nn.functional.cross_entropy(logits, target, weight=weight, label_smoothing=loss.label_smoothing).backward()
        return {n: (p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p)) for n, p in named.items()}

    def _features(self, split: str, index: int, labels: list) -> dict:
        """One row as the collator takes it: its token columns and the label the run trained it with."""
        row = self._plain[split][index]
        keys = ["input_ids", "token_type_ids", "attention_mask"] if self.has_token_types else ["input_ids", "attention_mask"]
        features = {k: row[k] for k in keys if k in row}
        features["labels"] = self.label_of((split, index), labels)
        return features

    def single(self, split: str, index: int, device=None) -> dict:
        """One example as a batch of one, no padding (so no mask can matter)."""
        row = self._plain[split][index]
        keys = ["input_ids", "token_type_ids"] if self.has_token_types else ["input_ids"]
        inputs = {k: torch.tensor([row[k]], device=device) for k in keys}
        inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
        return inputs

    @torch.no_grad()
    def reference_predictions(self, model: torch.nn.Module) -> list:
        """The trained model's class for each evaluation example, computed here, one at a time."""
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        predictions = []
        for i in range(len(self.eval_labels)):
            logits = model(**self.single("validation", i, device)).logits.float()
            predictions.append(int(logits.argmax(-1)))
        model.train(was_training)
        return predictions


@contextlib.contextmanager
def quiet():
    """Keep the loops' progress bars and per-epoch prints out of the battery's table."""
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        yield sink


def max_weight_difference(a: torch.nn.Module, b: torch.nn.Module) -> float:
    """Largest absolute difference between two models' parameters, tensor by tensor."""
    return max(float((p.detach() - q.detach()).abs().max()) for p, q in zip(a.parameters(), b.parameters()))


def _reset_accelerate() -> None:
    # Accelerate keeps process-wide singletons; the next run must start from its own arguments.
    try:
        from mrpc_check.testing import reset_accelerate

        reset_accelerate()
    except Exception:  # accelerate missing or too old: nothing to reset
        pass
