"""The option matrix, as data: supported combinations and answers pre-gen must refuse."""

from __future__ import annotations

SUPPORTED: dict[str, dict[str, str]] = {
    "default": {},
    "py313-custom-registry": {
        "python_version": "3.13",
        "container_registry": "localhost:5000/ml-team",
        "actions_ref": "0123456789abcdef0123456789abcdef01234567",
    },
    "py310-long-names": {
        "python_version": "3.10",
        "project_name": "Acme Consumer Credit Risk Scoring Engine",
        "github_owner": "acme-data-science-platform-engineering",
    },
    "py312-branch-ref": {
        "python_version": "3.12",
        "actions_ref": "release/v1.2",
    },
    "pytorch": {"framework": "pytorch"},
    "tensorflow": {"framework": "tensorflow"},
    "image-pytorch": {"task": "image", "framework": "pytorch"},
    "image-tensorflow": {"task": "image", "framework": "tensorflow"},
    "reinforcement-learning": {"task": "reinforcement-learning", "framework": "rllib"},
    "tricky-strings": {
        "project_name": "Zoë's Model",
        "project": "zoe-model",
        "description": "Quotes \" and ' and a back\\slash, unicode é ☃ and {braces}",
        "author_name": 'Zoë "Z" O\'Brien',
        "author_email": "zoe+ml@example.co.uk",
    },
}

# id -> (answers, fragment the error must contain). Values outside a choice list are refused by
# cookiecutter itself before the hook runs; pre-gen re-checks them for replayed answers.
UNSUPPORTED: dict[str, tuple[dict[str, str], str]] = {
    "project-uppercase": (
        {"project": "My-Project"},
        "project: 'My-Project' must be 1-40 lowercase",
    ),
    "project-double-hyphen": ({"project": "my--project"}, "project: 'my--project' must be 1-40"),
    "project-too-long": ({"project": "a" * 41}, "must be 1-40 lowercase"),
    "package-hyphen": ({"package": "my-package"}, "package: 'my-package' must be 1-40 lowercase"),
    "package-keyword": ({"package": "class"}, "package: 'class' is a Python keyword"),
    "package-stdlib": ({"package": "json"}, "package: 'json' would shadow the standard-library"),
    "email": ({"author_email": "not-an-email"}, "author_email: 'not-an-email' must be an e-mail"),
    "python-too-old": ({"python_version": "3.9"}, "choice variable python_version"),
    "task-unknown": ({"task": "video"}, "choice variable task"),
    "rllib-for-tabular": (
        {"framework": "rllib"},
        "framework: 'rllib' does not train the tabular task; choose sklearn or pytorch or "
        "tensorflow (or another task)",
    ),
    "sklearn-for-images": (
        {"task": "image"},
        "framework: 'sklearn' does not train the image task; choose pytorch or tensorflow "
        "(or another task)",
    ),
    "sklearn-for-an-agent": (
        {"task": "reinforcement-learning"},
        "framework: 'sklearn' does not train the reinforcement-learning task; choose rllib",
    ),
    "owner-leading-hyphen": ({"github_owner": "-acme"}, "github_owner: '-acme' must be a GitHub"),
    "registry-scheme": ({"container_registry": "https://ghcr.io"}, "container_registry: 'https://"),
    "actions-repository": ({"actions_repository": "no-slash"}, "actions_repository: 'no-slash'"),
    "empty-name": ({"project_name": " ", "project": "x"}, "project_name: ' ' must not be empty"),
    "package-shadows-dependency": (
        {"package": "numpy"},
        "package: 'numpy' would shadow a library the generated project depends on",
    ),
    "package-tests": ({"package": "tests"}, "package: 'tests' would shadow a library"),
    "project-shadows-dependency": (
        {"project": "mlflow", "package": "my_mlflow"},
        "project: 'mlflow' would shadow a library",
    ),
    "ref-double-dot": ({"actions_ref": "a..b"}, "actions_ref: 'a..b' is not a valid git ref"),
    "ref-lock": ({"actions_ref": "x.lock"}, "actions_ref: 'x.lock' is not a valid git ref"),
    "registry-dot-dot": (
        {"container_registry": "ghcr.io/../x"},
        "container_registry: 'ghcr.io/../x' must be a registry host",
    ),
    "control-character": ({"author_name": "Bob\x1b[31m"}, "must not contain control characters"),
    "multiline-description": (
        {"description": "one\ntwo"},
        "description: 'one\\ntwo' must be a single",
    ),
}
