"""Train the two quickstart models on the iris data that ships with scikit-learn (seconds).

v1 is a logistic regression, v2 a small random forest; each is saved as `model.joblib` in
its own model directory, which the serving server recognises as a scikit-learn model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HERE = Path(__file__).parent


def train(out: Path = HERE / "models") -> dict[str, float]:
    """Fit both models, save them, and return their held-out accuracy."""
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    features, labels = load_iris(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        features, labels, test_size=0.3, random_state=0, stratify=labels
    )
    models = {
        "v1": LogisticRegression(max_iter=500),
        "v2": RandomForestClassifier(n_estimators=25, max_depth=4, random_state=0),
    }
    scores = {}
    for name, model in models.items():
        model.fit(x_train, y_train)
        scores[name] = float(model.score(x_test, y_test))
        target = out / name
        target.mkdir(parents=True, exist_ok=True)
        joblib.dump(model, target / "model.joblib")
    return scores


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=HERE / "models")
    for version, accuracy in train(parser.parse_args().out).items():
        print(f"{version}: held-out accuracy {accuracy:.3f}")
