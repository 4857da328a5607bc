"""The transformers-version shims, against stand-ins for old and new signatures and the installed one."""

from mrpc_check.compat import trainer_processing_kwargs, training_args_kwargs


class OldTrainer:
    def __init__(self, model=None, args=None, tokenizer=None):
        pass


class NewTrainer:
    def __init__(self, model=None, args=None, processing_class=None):
        pass


class OldArgs:
    def __init__(self, output_dir=None, evaluation_strategy="no", warmup_ratio=0.0, warmup_steps=0):
        pass


class NewArgs:
    def __init__(self, output_dir=None, eval_strategy="no", warmup_steps=0):
        pass


class TestTrainerTokenizer:
    def test_old_and_new_names(self):
        tok = object()
        assert trainer_processing_kwargs(tok, OldTrainer) == {"tokenizer": tok}
        assert trainer_processing_kwargs(tok, NewTrainer) == {"processing_class": tok}

    def test_installed_trainer_accepts_it(self):
        import inspect

        from transformers import Trainer

        (name,) = trainer_processing_kwargs(object(), Trainer)
        assert name in inspect.signature(Trainer.__init__).parameters


class TestTrainingArgs:
    def test_eval_strategy_name(self):
        assert training_args_kwargs(OldArgs, eval_strategy="epoch") == {"evaluation_strategy": "epoch"}
        assert training_args_kwargs(NewArgs, eval_strategy="epoch") == {"eval_strategy": "epoch"}

    def test_warmup_ratio_where_it_exists_else_float_steps(self):
        assert training_args_kwargs(OldArgs, eval_strategy="no", warmup_ratio=0.1)["warmup_ratio"] == 0.1
        assert training_args_kwargs(NewArgs, eval_strategy="no", warmup_ratio=0.1)["warmup_steps"] == 0.1
        assert training_args_kwargs(NewArgs, eval_strategy="no", warmup_steps=7)["warmup_steps"] == 7

    def test_installed_training_arguments_accept_them(self, tmp_path):
        from transformers import TrainingArguments

        args = TrainingArguments(**training_args_kwargs(TrainingArguments, eval_strategy="epoch", warmup_ratio=0.25,
                                                        output_dir=str(tmp_path), report_to="none", use_cpu=True))
        assert str(getattr(args, "eval_strategy", getattr(args, "evaluation_strategy", None))).lower().endswith("epoch")
        assert args.get_warmup_steps(100) == 25
