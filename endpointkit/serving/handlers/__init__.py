"""Built-in predictors: scikit-learn, XGBoost, ONNX Runtime, TorchScript, SageMaker toolkit
scripts, Vertex CPR classes. Each imports its framework only when it loads a model."""
