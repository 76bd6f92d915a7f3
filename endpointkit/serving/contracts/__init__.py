"""One module per prediction contract: SageMaker, Vertex AI, Open Inference Protocol v2."""
