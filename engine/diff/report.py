"""The diff as Markdown for a pull-request comment, with the touched services as a Mermaid graph."""

from __future__ import annotations

import re
from typing import Any, Optional

from .compare import OPS, SYMBOL
from .paths import change_text

# GitHub refuses comments over 65,536 characters; the details are cut to stay well below.
MAX_MARKDOWN = 60_000
MAX_VALUE = 160


def mermaid(services: dict[str, Any]) -> str:
    ident = lambda n: "svc_" + re.sub(r"\W", "_", n)  # noqa: E731
    lines = ["graph LR"]
    for n in services["nodes"]:
        state = services["changed"].get(n, "context")
        lines.append(f'  {ident(n)}["{n}"]:::{state}')
    for e in services["edges"]:
        arrow = {"kept": "-->", "added": "-- new -->", "removed": "-. removed .->"}[e["state"]]
        lines.append(f"  {ident(e['from'])} {arrow} {ident(e['to'])}")
    lines += [
        "  classDef added fill:#dafbe1,stroke:#1a7f37",
        "  classDef changed fill:#fff8c5,stroke:#9a6700",
        "  classDef removed fill:#ffebe9,stroke:#cf222e,stroke-dasharray:4",
        "  classDef context fill:#f6f8fa,stroke:#8c959f",
    ]
    return "\n".join(lines)


def _violation_line(v: dict[str, Any]) -> str:
    return f"| {v['enforcement']} | `{v['rule']}` | {v['severity']} | {_cell(v['resource'])} | {_cell(v['message'])} | {_cell(v['remediation'])} |"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(result: dict[str, Any], limit: int = MAX_MARKDOWN) -> str:
    s, stack = result["summary"], result["stack"]
    pol = s["policy"]
    head = [
        f"## Offline diff: stack `{stack}`",
        "",
        f"`{result['base']}` → `{result['head']}`: desired state from the embedded engine (no cloud calls; "
        "the real `pulumi preview` runs where credentials exist).",
        "",
    ]
    if result["blocking"]:
        head += [
            "> [!CAUTION]",
            f"> This change introduces {pol['introducedMandatory']} **mandatory** policy violation(s); the policy pack will block it (see *Policy* below).",
            "",
        ]
    replaced = [r for r in result["resources"] if r["op"] == "replace"]
    if replaced:
        head += ["> [!WARNING]", f"> {len(replaced)} resource(s) will be **replaced** (deleted and created again):"]
        for r in replaced:
            note = " — protected: `pulumi up` will refuse until `protect` is lifted" if r.get("protect") else ""
            head.append(f"> - `{r['type']}` **{r['name']}**: {', '.join(f'`{x}`' for x in r['replaceReasons'])}{note}")
        head.append("")
    protected_deletes = [r for r in result["resources"] if r["op"] == "delete" and r.get("protect")]
    if protected_deletes:
        head += ["> [!WARNING]", "> Protected resources would be deleted: " + ", ".join(f"`{r['name']}`" for r in protected_deletes), ""]
    head += ["| | resources |", "|---|---|"]
    head += [f"| `{SYMBOL[op]}` {op} | {s[op]} |" for op in OPS]
    m = s["manifests"]
    head += [
        f"| Kubernetes manifests | {m['added']} added, {m['changed']} changed, {m['removed']} removed |",
        f"| policy violations | {pol['introduced']} introduced ({pol['introducedMandatory']} mandatory), {pol['fixed']} fixed |",
        f"| stack outputs changed | {s['outputs']} |",
        f"| services touched | {s['services']} |",
        "",
    ]
    if not result["resources"] and not result["outputs"]:
        head += ["No changes: the desired state is identical.", ""]

    policy = result["policy"]
    if policy["introduced"] or policy["fixed"]:
        head += ["### Policy", ""]
        for title, items in (("Introduced by this change", policy["introduced"]), ("Fixed by this change", policy["fixed"])):
            if items:
                head += [f"**{title}**", "", "| enforcement | rule | severity | resource | message | how to fix |", "|---|---|---|---|---|---|"]
                head += [_violation_line(v) for v in items] + [""]
    if policy["unchanged"]:
        head += [f"{policy['unchanged']} violation(s) were already there before this change ({policy['unchangedMandatory']} mandatory).", ""]

    tail: list[str] = []
    services = result["services"]
    if services["changed"]:
        tail += [
            "### Services",
            "",
            ", ".join(f"**{n}** ({state})" for n, state in services["changed"].items()) + "; grey: their callers and dependencies.",
            "",
            "```mermaid",
            mermaid(services),
            "```",
            "",
        ]

    # The long parts go in the middle and are cut to fit a PR comment; diff.json has everything.
    budget = limit - len("\n".join(head + tail)) - 1000
    details: list[str] = []
    if result["resources"]:
        lines = []
        for r in result["resources"]:
            svc = f"  (service {r['service']})" if r["service"] else ""
            lines.append(f"{SYMBOL[r['op']]} {r['type']}: {r['name']}{svc}")
            for c in r.get("changes", []):
                mark = "+" if c["kind"] == "add" else "-" if c["kind"] == "delete" else "~"
                flag = "   # forces replacement" if c.get("replace") else ""
                lines.append(f"    {mark} {change_text(c, MAX_VALUE)}{flag}")
        details += _fenced("### Resources", "diff", lines, budget)
    if result["outputs"]:
        lines = [f"{'+' if c['kind'] == 'add' else '-' if c['kind'] == 'delete' else '~'} {change_text(c, MAX_VALUE)}" for c in result["outputs"]]
        details += _fenced("### Stack outputs", "diff", lines, budget - len("\n".join(details)))
    mf = result["manifests"]
    if any(mf.values()):
        listing = [f"- `+` `{p}`" for p in mf["added"]] + [f"- `-` `{p}`" for p in mf["removed"]] + [f"- `~` `{c['path']}`" for c in mf["changed"]]
        details += ["### Kubernetes manifests", "", f"Under `build/{stack}/manifests/`:", ""]
        details += _capped(listing, budget - len("\n".join(details))) + [""]
        text = [line for c in mf["changed"] for line in c["diff"].splitlines()]
        if text:
            details += ["<details><summary>Manifest diffs</summary>", ""]
            details += _fenced(None, "diff", text, budget - len("\n".join(details)))
            details += ["</details>", ""]
    out = "\n".join(head + details + tail).rstrip() + "\n"
    if len(out) > limit:
        out = out[: limit - 200].rsplit("\n", 1)[0] + "\n\n*(cut to fit a comment; the whole diff is in diff.json)*\n"
    return out


def _capped(lines: list[str], budget: int) -> list[str]:
    used = 0
    kept: list[str] = []
    for line in lines:
        if used + len(line) + 1 > max(budget, 1000):
            return kept + [f"... {len(lines) - len(kept)} more line(s) in diff.json"]
        kept.append(line)
        used += len(line) + 1
    return kept


def _fenced(title: Optional[str], lang: str, lines: list[str], budget: int) -> list[str]:
    return ([title, ""] if title else []) + [f"```{lang}", *_capped(lines, budget), "```", ""]
