"""The Open311 service catalogue (``services.toml``) and the checks on a request's attributes."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workorders.dispatch import CATEGORIES
from workorders.errors import InvalidInput, UnknownService

PACKAGE_DIR = Path(__file__).resolve().parent
DATATYPES = ("string", "number", "datetime", "text", "singlevaluelist", "multivaluelist")
TYPES = ("realtime", "batch", "blackbox")


@dataclass(frozen=True)
class Attribute:
    code: str
    datatype: str
    required: bool
    order: int
    description: str
    values: tuple[tuple[str, str], ...] = ()  # (key, name)
    variable: bool = True
    datatype_description: str = ""

    def check(self, given: Sequence[str]) -> str | list[str]:
        """The attribute's value from the form, or :class:`InvalidInput` saying what is wrong."""
        values = [v for v in given if v != ""]
        if not values:
            if self.required:
                raise InvalidInput(f"attribute {self.code} is required")
            return [] if self.datatype == "multivaluelist" else ""
        keys = {key for key, _ in self.values}
        if self.datatype in ("singlevaluelist", "multivaluelist"):
            wrong = [v for v in values if v not in keys]
            if wrong:
                allowed = ", ".join(sorted(keys))
                raise InvalidInput(f"attribute {self.code}: {wrong[0]!r} is not one of {allowed}")
            return values if self.datatype == "multivaluelist" else values[0]
        if self.datatype == "number":
            try:
                float(values[0])
            except ValueError:
                raise InvalidInput(f"attribute {self.code} must be a number") from None
        return values[0]


@dataclass(frozen=True)
class Service:
    code: str
    name: str
    description: str
    type: str
    keywords: tuple[str, ...]
    group: str
    category: str
    notice: str
    attributes: tuple[Attribute, ...]

    @property
    def metadata(self) -> bool:
        return bool(self.attributes)


@dataclass(frozen=True)
class ServiceCatalog:
    services: tuple[Service, ...]

    def get(self, code: str) -> Service:
        for service in self.services:
            if service.code == code:
                return service
        raise UnknownService(f"service_code {code!r} is not a known service")

    def check_attributes(
        self, service: Service, given: Mapping[str, Sequence[str]]
    ) -> dict[str, Any]:
        unknown = sorted(set(given) - {a.code for a in service.attributes})
        if unknown:
            raise InvalidInput(f"service {service.code} has no attribute {unknown[0]}")
        return {a.code: a.check(given.get(a.code, ())) for a in service.attributes}

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ServiceCatalog:
        services = []
        for s in data.get("service", []):
            if s.get("type", "realtime") not in TYPES or s["category"] not in CATEGORIES:
                raise ValueError(f"service {s.get('code')}: bad type or category")
            attributes = tuple(
                sorted((_attribute(a) for a in s.get("attribute", [])), key=lambda a: a.order)
            )
            services.append(
                Service(
                    code=str(s["code"]),
                    name=str(s["name"]),
                    description=str(s.get("description", "")),
                    type=str(s.get("type", "realtime")),
                    keywords=tuple(str(k) for k in s.get("keywords", [])),
                    group=str(s.get("group", "")),
                    category=str(s["category"]),
                    notice=str(s.get("notice", "")),
                    attributes=attributes,
                )
            )
        return cls(tuple(services))

    @classmethod
    def load(cls, path: Path = PACKAGE_DIR / "services.toml") -> ServiceCatalog:
        return cls.from_mapping(tomllib.loads(path.read_text(encoding="utf-8")))


def _attribute(a: Mapping[str, Any]) -> Attribute:
    if a.get("datatype") not in DATATYPES:
        raise ValueError(f"attribute {a.get('code')}: datatype must be one of {DATATYPES}")
    return Attribute(
        code=str(a["code"]),
        datatype=str(a["datatype"]),
        required=bool(a.get("required", False)),
        order=int(a.get("order", 0)),
        description=str(a.get("description", "")),
        values=tuple((str(v["key"]), str(v["name"])) for v in a.get("values", [])),
        variable=bool(a.get("variable", True)),
        datatype_description=str(a.get("datatype_description", "")),
    )
