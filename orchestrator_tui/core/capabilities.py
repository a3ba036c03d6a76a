"""What an agent is good at: capability names, written by hand or inferred from its text.

Inference is a keyword table over the agent's name and description; it is deliberately
simple, deterministic and explainable (each capability lists the words that imply it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Capability -> words that imply it; a word ending in "*" matches any word it begins.
KEYWORDS: dict[str, tuple[str, ...]] = {
    "security": ("secur*", "vulnerab*", "secret", "secrets", "pentest*", "owasp", "threat*",
                 "exploit*", "cve", "authentication", "authoriz*"),
    "code-review": ("review*", "lint*", "smell", "smells"),
    "testing": ("test*", "tdd", "qa", "pytest", "jest", "coverage"),
    "performance": ("performance", "perf", "optimiz*", "optimis*", "latency", "profil*",
                    "benchmark*", "bottleneck*"),
    "documentation": ("doc", "docs", "document*", "readme", "tutorial*", "changelog*"),
    "architecture": ("architect*", "design", "dependency", "dependencies"),
    "api-design": ("api", "apis", "openapi", "graphql", "rest", "restful", "grpc",
                   "endpoint*"),
    "python": ("python*", "django", "fastapi", "flask", "pytest"),
    "typescript": ("typescript", "javascript", "node", "nodejs", "react", "vue", "angular",
                   "nextjs"),
    "frontend": ("frontend", "ui", "ux", "css", "react", "vue", "angular"),
    "backend": ("backend", "server", "microservice*"),
    "database": ("database*", "sql", "postgres*", "mysql", "mongo*", "schema", "schemas",
                 "migration", "migrations"),
    "devops": ("devops", "deploy*", "kubernetes", "docker", "terraform", "ci", "cd",
               "pipeline*", "cloud", "infrastructure", "helm"),
    "debugging": ("debug*", "troubleshoot*", "incident*", "error", "errors", "bug", "bugs"),
    "refactoring": ("refactor*", "legacy", "moderniz*", "cleanup"),
    "data": ("data", "analytics", "etl", "ml", "mlops"),
    "mobile": ("mobile", "ios", "android", "flutter", "swift", "kotlin"),
    "planning": ("plan", "planning", "planner", "orchestrat*", "coordinat*", "roadmap*"),
    "research": ("research*", "analyst", "investigat*"),
}

_WORD = re.compile(r"[a-z0-9]+")
_SLUG_JUNK = re.compile(r"[^a-z0-9._-]+")


def words_of(text: str) -> list[str]:
    """The lower-case words of `text` (letters and digits; other characters separate)."""
    return _WORD.findall(text.casefold())


def infer_capabilities(name: str, description: str) -> tuple[str, ...]:
    """Capabilities implied by an agent's name and description, in the table's order."""
    words = set(words_of(name) + words_of(description))
    found = []
    for capability, stems in KEYWORDS.items():
        if any(_matches(stem, words) for stem in stems):
            found.append(capability)
    return tuple(found)


def _matches(keyword: str, words: set[str]) -> bool:
    if keyword.endswith("*"):
        stem = keyword[:-1]
        return any(word.startswith(stem) for word in words)
    return keyword in words


def capability_slug(value: str) -> str:
    """A capability written by hand, normalised: lower case, runs of other characters -> '-'."""
    return _SLUG_JUNK.sub("-", value.strip().casefold()).strip("-._")


def normalise_capabilities(values: Iterable[str]) -> tuple[str, ...]:
    """Hand-written capabilities as slugs, without empties or repeats, in their order."""
    seen: dict[str, None] = {}
    for value in values:
        slug = capability_slug(value)
        if slug:
            seen.setdefault(slug, None)
    return tuple(seen)
