"""Emotion inference read-outs: tasks, linear probe, LM-head verbalizer, soft prompt, and their runs."""
