"""serve stage: batch inference with the model version holding an alias (`predict_batch`)."""

from dataplatform.serve.batch import (
    BATCHES_TABLE,
    PREDICTIONS_TABLE,
    BatchInferenceError,
    BatchScoreResult,
    NoModelForAlias,
    ensure_predictions_table,
    predict_batch,
)

__all__ = [
    "BATCHES_TABLE",
    "PREDICTIONS_TABLE",
    "BatchInferenceError",
    "BatchScoreResult",
    "NoModelForAlias",
    "ensure_predictions_table",
    "predict_batch",
]
