"""The MLflow model registry: the one adapter (:mod:`governance.registry.mlflow`) and the
registered pyfunc model (:mod:`governance.registry.pyfunc`)."""
