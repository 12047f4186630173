"""Compatibility names for code written before the split; new code imports from the modules:

- `serving`: the model cache, predictions, evaluations;
- `uinput`: numbers from the UI;
- `app_data`: the app's data and its fallbacks;
- `lab`: the augmentation lab's grid.
"""
from __future__ import annotations

from .app_data import (EvalData, TrainingData, data_dir_from_env, example_paths,  # noqa: F401
                       load_sample, load_test_data, load_training_data)
from .lab import augment_grid  # noqa: F401
from .serving import (ActiveModel, EvaluationCache, ModelCache, class_index,  # noqa: F401
                      load_servable, probabilities, top_k)
from .uinput import MAX_SEED, MAX_VIEWS, coerce_augment, number, whole_number  # noqa: F401
