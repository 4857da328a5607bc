"""PEFT's LoRA sequence-classification example on GLUE MRPC, its loop re-created for the battery.

Source: huggingface/peft, ``examples/sequence_classification/LoRA.ipynb`` (roberta-large on MRPC, 20 epochs,
batch 32, lr 3e-4). What it does, reproduced here:

* ``get_peft_model(model, LoraConfig(task_type="SEQ_CLS", inference_mode=False, r=8, lora_alpha=16,
  lora_dropout=0.1))``: the base model frozen, LoRA A/B matrices added on the attention's query and value
  (PEFT's default targets for BERT-style models), and, for ``SEQ_CLS``, a trained copy of the classifier
  (``modules_to_save``); the battery sees 10 tensors the loop added and trained, the model's own 41 frozen;
* ``torch.optim.AdamW(params=model.parameters(), lr=lr)``: torch's default weight decay 0.01 on the tensors
  that train (the frozen base sits in the group too and is skipped, never decayed);
* ``get_linear_schedule_with_warmup(num_warmup_steps=0.06 * (len(train_dataloader) * num_epochs), ...)``: a
  warmup given as a fraction of the total and never rounded (0.72 steps at the battery's 12): the rate is 0 at
  the first step, then jumps onto the decay;
* the model's own loss, no accumulation, no clipping; evaluation after every epoch in ``model.eval()`` under
  ``no_grad`` (the last epoch's predictions returned).

Expected: ``optimizer`` and ``schedule`` fail (the decay and the fractional warmup: the two places this
published recipe departs from the walkthrough's), ``frozen`` and ``dropout`` warn (LoRA's choices, declarable);
the gradient checks step aside for LoRA's dropout.
"""

import torch
from peft import LoraConfig, get_peft_model
from torch.utils.data import DataLoader
from transformers import get_linear_schedule_with_warmup


def train_and_evaluate(model, train_dataset, eval_dataset, collator, *, batch_size, lr, num_epochs, lora_dropout=0.1):
    peft_config = LoraConfig(task_type="SEQ_CLS", inference_mode=False, r=8, lora_alpha=16, lora_dropout=lora_dropout)
    model = get_peft_model(model, peft_config)
    train_dataloader = DataLoader(train_dataset, shuffle=True, collate_fn=collator, batch_size=batch_size)
    eval_dataloader = DataLoader(eval_dataset, shuffle=False, collate_fn=collator, batch_size=batch_size)
    optimizer = torch.optim.AdamW(params=model.parameters(), lr=lr)
    lr_scheduler = get_linear_schedule_with_warmup(
        optimizer=optimizer,
        num_warmup_steps=0.06 * (len(train_dataloader) * num_epochs),
        num_training_steps=(len(train_dataloader) * num_epochs),
    )
    predictions = []
    for _ in range(num_epochs):
        model.train()
        for batch in train_dataloader:
            outputs = model(**batch)
            outputs.loss.backward()
            optimizer.step()
            lr_scheduler.step()
            optimizer.zero_grad()
        model.eval()
        predictions = []
        for batch in eval_dataloader:
            with torch.no_grad():
                outputs = model(**batch)
            predictions += outputs.logits.argmax(dim=-1).tolist()
    return predictions


def adapter(model, train_dataset, eval_dataset, collator, recipe):
    torch.manual_seed(recipe.seed)
    return train_and_evaluate(model, train_dataset, eval_dataset, collator, batch_size=recipe.batch_size, lr=recipe.lr,
                              num_epochs=recipe.epochs)


adapter.supports = set()

EXPECTED = {
    "optimizer": "fail",  # torch's default weight decay 0.01 on the LoRA matrices and the head's copy
    "schedule": "fail",  # num_warmup_steps = 0.06 x total, a fraction of a step
    "frozen": "warn",  # the base frozen, LoRA's tensors trained instead
    "dropout": "warn",  # lora_dropout=0.1
    "padding": "skip", "accumulation": "skip", "gradients_cleared": "skip",  # random under LoRA's dropout
    "label_control": "skip",  # not judged: rests on the gradient checks
    "grouping": "skip", "clipping": "skip", "resume": "skip",  # declared
}
EFFECTIVE = {"clip_norm": None, "frozen": ("bert", "classifier"), "label_smoothing": 0.0, "warmup": 0.72,
             "added": ("LoRA A/B on query, value", "a copy of classifier")}
