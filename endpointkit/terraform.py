"""Terraform: export a spec as `*.tf.json`, and the commands Terraform calls where it can't act.

* `export_terraform(spec)` -> a Terraform JSON document. SageMaker: one `aws_sagemaker_model`
  per version, an `aws_sagemaker_endpoint_configuration` with `name_prefix` and
  `create_before_destroy`, production and shadow variants with weights, and the endpoint
  (optionally with a `deployment_config`). Vertex AI: the `google_vertex_ai_endpoint` plus a
  `terraform_data` resource whose provisioners run `endpointkit tf apply` / `tf destroy`,
  because the google provider cannot upload or deploy models (terraform-provider-google#15303).
  Output is deterministic (sorted keys), so diffs stay clean.
* `read_query(query)` implements the `external` data source protocol: a JSON object of strings
  in, a flat JSON object of strings out, no side effects.
* `apply_from_env` / `destroy_from_env` back `local-exec` and `terraform_data` provisioners:
  inputs come from environment variables (never interpolated into a shell string), they are
  idempotent, and they fail with one line on stderr.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any

from endpointkit.errors import NotFound, ValidationError
from endpointkit.spec import EndpointSpec, VersionSpec
from endpointkit.state import EndpointState

__all__ = [
    "ENV_BACKEND",
    "ENV_ENDPOINT",
    "ENV_SETTINGS",
    "ENV_SPEC",
    "apply_from_env",
    "destroy_from_env",
    "export_terraform",
    "read_query",
]

ENV_SPEC = "ENDPOINTKIT_SPEC"  # path to a spec file, or the spec itself as JSON
ENV_ENDPOINT = "ENDPOINTKIT_ENDPOINT"
ENV_BACKEND = "ENDPOINTKIT_BACKEND"
ENV_SETTINGS = "ENDPOINTKIT_SETTINGS"  # JSON object of backend settings

MANAGED_TAGS = {"managed-by": "endpointkit"}


def _resource_id(text: str) -> str:
    """A Terraform resource name: letters, digits, underscores."""
    return text.replace("-", "_")


def _model_data(version: VersionSpec, spec: EndpointSpec) -> str:
    if version.model is None:
        raise ValidationError(
            f"version {version.name!r} of {spec.name!r} has no model artifact; Terraform needs "
            "an s3:// URI.",
            endpoint=spec.name,
            version=version.name,
        )
    if not version.model.startswith("s3://"):
        raise ValidationError(
            f"version {version.name!r} of {spec.name!r}: Terraform's aws_sagemaker_model needs "
            f"an s3:// model URI, got {version.model!r}.",
            hint="Upload the model first (endpointkit apply with backend: sagemaker packages "
            "and uploads local directories), then export again with the s3:// URI.",
            endpoint=spec.name,
            version=version.name,
        )
    return version.model


def _snake(name: str) -> str:
    """SageMaker API names to the aws provider's: "MemorySizeInMB" -> "memory_size_in_mb"."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _provider_attributes(value: Any) -> Any:
    if isinstance(value, dict):
        return {_snake(key): _provider_attributes(item) for key, item in value.items()}
    return value


def _sagemaker_variant(version: VersionSpec, weight: float) -> dict[str, Any]:
    from endpointkit.adapters.sagemaker.backend import production_variant

    model = f"${{aws_sagemaker_model.{_resource_id(version.name)}.name}}"
    variant: dict[str, Any] = _provider_attributes(production_variant(version, model, weight))
    return variant


def export_sagemaker(
    spec: EndpointSpec,
    *,
    managed_traffic: bool = True,
    deployment_config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Terraform JSON for the spec's SageMaker endpoint.

    With `managed_traffic` (the default) the endpoint ignores changes to its endpoint config,
    so versions and weights that endpointkit sets later are never reset by `terraform apply`
    (terraform-provider-aws#48990).
    """
    from endpointkit.adapters.sagemaker._naming import model_name
    from endpointkit.adapters.sagemaker.backend import container_environment

    ep = _resource_id(spec.name)
    tags = {**spec.tags, **MANAGED_TAGS, "endpointkit:endpoint": spec.name}
    models: dict[str, Any] = {}
    prebuilt: dict[str, Any] = {}
    for version in spec.versions:
        env = container_environment(version)
        image = version.image or "${var.default_image}"
        if version.framework is not None:
            prebuilt[_resource_id(version.name)] = _prebuilt_image(version)
            image = f"${{data.aws_sagemaker_prebuilt_ecr_image.{_resource_id(version.name)}"
            image += ".registry_path}"
        models[_resource_id(version.name)] = {
            "name": model_name(spec.name, version.name, version.spec_hash),
            "execution_role_arn": "${var.execution_role_arn}",
            "primary_container": {
                "image": image,
                "model_data_url": _model_data(version, spec),
                "environment": dict(sorted(env.items())),
            },
            "tags": {
                **tags,
                "endpointkit:version": version.name,
                "endpointkit:spec-hash": version.spec_hash,
            },
        }
    split = spec.traffic_split
    shadow_name = spec.shadow.version if spec.shadow else None
    production = [
        _sagemaker_variant(v, float(split[v.name])) for v in spec.versions if v.name != shadow_name
    ]
    config: dict[str, Any] = {
        "name_prefix": f"{spec.name[:40]}-",
        "production_variants": production,
        "tags": tags,
        "lifecycle": [{"create_before_destroy": True}],
    }
    if spec.shadow is not None:
        shadow = spec.version(spec.shadow.version)
        # SageMaker samples shadow traffic by weight relative to the production variants.
        config["shadow_production_variants"] = [
            _sagemaker_variant(shadow, float(spec.shadow.sample_percent))
        ]
    endpoint: dict[str, Any] = {
        "name": spec.name,
        "endpoint_config_name": f"${{aws_sagemaker_endpoint_configuration.{ep}.name}}",
        "tags": tags,
    }
    if deployment_config:
        endpoint["deployment_config"] = [deployment_config]
    if managed_traffic:
        endpoint["lifecycle"] = [{"ignore_changes": ["endpoint_config_name"]}]
    document: dict[str, Any] = {
        "terraform": {
            "required_providers": {"aws": {"source": "hashicorp/aws", "version": ">= 5.0"}}
        },
        "variable": {
            "execution_role_arn": {
                "type": "string",
                "description": "IAM role SageMaker assumes to pull the image and model.",
            },
            "default_image": {
                "type": "string",
                "default": "",
                "description": "Serving image for versions that name none (the endpointkit image).",
            },
        },
        "resource": {
            "aws_sagemaker_model": models,
            "aws_sagemaker_endpoint_configuration": {ep: config},
            "aws_sagemaker_endpoint": {ep: endpoint},
        },
        "output": {
            "endpoint_name": {"value": f"${{aws_sagemaker_endpoint.{ep}.name}}"},
            "endpoint_arn": {"value": f"${{aws_sagemaker_endpoint.{ep}.arn}}"},
        },
    }
    if prebuilt:
        document["data"] = {"aws_sagemaker_prebuilt_ecr_image": prebuilt}
    return _sorted_dict(document)


def _prebuilt_image(version: VersionSpec) -> dict[str, str]:
    """The aws provider's `aws_sagemaker_prebuilt_ecr_image` arguments for a framework version.

    The SDK's `image_uris` picks the repository and tag (they are the same in every commercial
    region); the provider fills in the account and registry of the provider's region.
    """
    from endpointkit.adapters.sagemaker._prebuilt import lookup_image
    from endpointkit.adapters.sagemaker._variants import DEFAULT_INSTANCE_TYPE

    assert version.framework is not None  # the caller checks
    uri = lookup_image(
        version.framework,
        version.framework_version,
        py_version=version.py_version,
        region="us-east-1",
        instance_type=version.resources.instance_type or DEFAULT_INSTANCE_TYPE,
        version=version.name,
    )
    repository, _, tag = uri.partition("/")[2].partition(":")
    return {"repository_name": repository, "image_tag": tag}


def export_vertex(spec: EndpointSpec, *, spec_path: str | None = None) -> dict[str, Any]:
    """Terraform JSON for the spec's Vertex AI endpoint plus the deploy step Terraform lacks.

    The `terraform_data` resource re-runs `endpointkit tf apply` whenever the spec changes and
    `endpointkit tf destroy` on destroy, reading the endpoint name from `self.triggers_replace`.
    """
    ep = _resource_id(spec.name)
    spec_json = spec.model_dump_json(exclude_none=True)
    settings = spec.settings
    endpoint: dict[str, Any] = {
        "name": spec.name,
        "display_name": spec.name,
        "location": settings.get("location", "${var.location}"),
        "project": settings.get("project", "${var.project}"),
        "labels": {**spec.tags, **MANAGED_TAGS},
    }
    environment = {
        ENV_SPEC: spec_path or spec_json,
        ENV_BACKEND: "vertex",
    }
    deploy = {
        "triggers_replace": {
            "endpoint": spec.name,
            "spec": spec_json,
            "settings": json.dumps(settings, sort_keys=True),
        },
        "depends_on": [f"google_vertex_ai_endpoint.{ep}"],
        "provisioner": [
            {"local-exec": {"command": "endpointkit tf apply", "environment": environment}},
            {
                "local-exec": {
                    "when": "destroy",
                    "command": "endpointkit tf destroy",
                    "environment": {
                        ENV_ENDPOINT: "${self.triggers_replace.endpoint}",
                        ENV_BACKEND: "vertex",
                        ENV_SETTINGS: "${self.triggers_replace.settings}",
                    },
                }
            },
        ],
    }
    document = {
        "terraform": {
            "required_providers": {"google": {"source": "hashicorp/google", "version": ">= 5.0"}}
        },
        "variable": {
            "project": {"type": "string", "default": settings.get("project", "")},
            "location": {"type": "string", "default": settings.get("location", "us-central1")},
        },
        "resource": {
            "google_vertex_ai_endpoint": {ep: endpoint},
            "terraform_data": {f"{ep}_deploy": deploy},
        },
        "output": {"endpoint_id": {"value": f"${{google_vertex_ai_endpoint.{ep}.id}}"}},
    }
    return _sorted_dict(document)


def export_terraform(spec: EndpointSpec, **options: Any) -> dict[str, Any]:
    """Terraform JSON for `spec` on its backend (sagemaker or vertex)."""
    if spec.backend == "sagemaker":
        return export_sagemaker(spec, **options)
    if spec.backend == "vertex":
        return export_vertex(spec, **options)
    raise ValidationError(
        f"cannot export endpoint {spec.name!r} on backend {spec.backend!r} to Terraform.",
        hint="Set 'backend: sagemaker' or 'backend: vertex' in the spec.",
        endpoint=spec.name,
    )


def _sorted_dict(document: dict[str, Any]) -> dict[str, Any]:
    """Keys sorted at every level, so the JSON is byte-for-byte stable."""
    return {key: _sorted(document[key]) for key in sorted(document)}


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value


# -- the `external` data source ------------------------------------------------------------------


def read_query(query: Mapping[str, Any]) -> dict[str, str]:
    """Answer an `external` data source query; never changes anything.

    Query keys (all strings): `endpoint` (required), `backend`, `settings` (a JSON object).
    Result (all strings): exists, status, versions and traffic and shadow (JSON-encoded),
    images (JSON object version -> image), failure_reason.
    """
    from endpointkit.adapters.registry import get_backend

    for key, value in query.items():
        if not isinstance(value, str):
            raise ValidationError(
                f"query value {key!r} must be a string (Terraform's external protocol); "
                f"got {type(value).__name__}.",
                hint="Use jsonencode() for structured values.",
            )
    name = query.get("endpoint")
    if not name:
        raise ValidationError("the query needs 'endpoint' (the endpoint name).")
    backend = get_backend(query.get("backend") or None, _settings(query.get("settings", "")))
    try:
        state = backend.get(name)
    except NotFound:
        return {
            "exists": "false",
            "endpoint": name,
            "status": "",
            "versions": "[]",
            "traffic": "{}",
            "shadow": "null",
            "images": "{}",
            "failure_reason": "",
        }
    return _state_strings(state)


def _state_strings(state: EndpointState) -> dict[str, str]:
    images = {
        v.name: (v.spec.image or "") if v.spec else str(v.details.get("image", ""))
        for v in state.versions
    }
    return {
        "exists": "true",
        "endpoint": state.name,
        "status": str(state.status),
        "versions": json.dumps(state.version_names),
        "traffic": json.dumps(dict(state.traffic.root), sort_keys=True),
        "shadow": json.dumps(state.shadow.model_dump() if state.shadow else None),
        "images": json.dumps(images, sort_keys=True),
        "failure_reason": state.failure_reason or "",
    }


def _settings(raw: str) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        settings = json.loads(raw)
    except ValueError as exc:
        raise ValidationError(f"settings must be a JSON object: {exc}") from None
    if not isinstance(settings, dict):
        raise ValidationError("settings must be a JSON object.")
    return settings


# -- local-exec / terraform_data commands --------------------------------------------------------


def _spec_from_env(environ: Mapping[str, str], spec_arg: str | None) -> EndpointSpec:
    from endpointkit.spec import load_spec

    raw = spec_arg or environ.get(ENV_SPEC, "")
    if not raw:
        raise ValidationError(f"no spec: pass --spec FILE or set {ENV_SPEC} (a path or JSON).")
    if raw.lstrip().startswith("{"):
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise ValidationError(f"{ENV_SPEC} is not valid JSON: {exc}") from None
        return EndpointSpec.from_dict(data, source=ENV_SPEC)
    return load_spec(raw)


def apply_from_env(
    environ: Mapping[str, str] | None = None,
    *,
    spec_arg: str | None = None,
    timeout: float = 1800.0,
) -> EndpointState | None:
    """Make the endpoint match the spec in `--spec` / ENDPOINTKIT_SPEC (idempotent)."""
    from endpointkit.adapters.registry import get_backend
    from endpointkit.planner import apply

    env = os.environ if environ is None else environ
    spec = _spec_from_env(env, spec_arg)
    settings = {**spec.settings, **_settings(env.get(ENV_SETTINGS, ""))}
    backend = get_backend(env.get(ENV_BACKEND) or spec.backend, settings)
    return apply(spec, backend, timeout=timeout).state


def destroy_from_env(
    environ: Mapping[str, str] | None = None,
    *,
    name_arg: str | None = None,
    timeout: float = 1800.0,
) -> bool:
    """Delete the endpoint named by `--name` / ENDPOINTKIT_ENDPOINT; True if it existed."""
    from endpointkit.adapters.registry import get_backend
    from endpointkit.planner import destroy

    env = os.environ if environ is None else environ
    name = name_arg or env.get(ENV_ENDPOINT, "")
    if not name:
        raise ValidationError(f"no endpoint: pass --name NAME or set {ENV_ENDPOINT}.")
    backend = get_backend(env.get(ENV_BACKEND) or None, _settings(env.get(ENV_SETTINGS, "")))
    return bool(destroy(name, backend, timeout=timeout).plan)
