"""The `core` command. Listing and help import no torch; only `run`, `verify`, `demo`, `check` do."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from . import __version__
from .errors import UserError
from .interfaces import KINDS


def _registry():
    from .plugins import registry

    return registry()


def _table(rows: list[list[str]], header: list[str]) -> str:
    from .tables import text_table

    return text_table(rows, header)


# --------------------------------------------------------------------------- commands


def cmd_list(args: argparse.Namespace) -> int:
    reg = _registry()
    if args.json:
        out = []
        for p in reg.plugins.values():
            out.append(
                {
                    "name": p.name,
                    "distribution": p.distribution,
                    "version": p.version,
                    "error": p.error,
                    "summary": p.info.summary if p.info else "",
                    "components": [
                        {"name": c.name, "kind": c.kind, "produces": list(c.produces), "consumes": list(c.consumes)}
                        for c in p.components.values()
                    ],
                    "tasks": list(p.tasks),
                }
            )
        print(json.dumps(out, indent=2))
        return 0
    for p in reg.plugins.values():
        if p.error:
            continue
        print(f"{p.name} {p.version}  ({p.distribution})  {p.info.summary if p.info else ''}")
        if p.tasks:
            print("  tasks:      " + ", ".join(f"{p.name}:{t}" for t in p.tasks))
        for kind in KINDS:
            names = [c.name for c in p.components.values() if c.kind == kind]
            if names:
                print(f"  {kind + 's:':<11} " + ", ".join(f"{p.name}:{n}" for n in names))
    broken = [p for p in reg.plugins.values() if p.error]
    if broken:
        print("\nbroken plugins (skipped; everything else works):")
        for p in broken:
            print(f"  {p.name} ({p.distribution or p.module}): {p.error}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    reg = _registry()
    if ":" in args.target:
        pname, _, name = args.target.partition(":")
        if name not in reg.plugin(pname).tasks and name in reg.plugin(pname).components:
            return _component_info(reg, args.target)
        return _task_info(reg, args.target)
    p = reg.plugin(args.target)
    info = p.info
    print(f"{p.name} {p.version} ({p.distribution})\n  {info.summary}")
    if info.paper:
        print(f"  paper: {info.paper}  {info.url}")
    req = info.requires
    print(f"  needs: {', '.join(req.packages) or '-'}; gpu {req.gpu}; ~{req.memory_gb:g} GB RAM")
    if p.components:
        print("\ncomponents (core info PLUGIN:COMPONENT lists its arguments):")
        rows = [
            [f"{p.name}:{c.name}", c.kind, ",".join(c.produces) or "-", ",".join(c.consumes) or "-", c.summary]
            for c in p.components.values()
        ]
        print(_table(rows, ["name", "kind", "produces", "consumes", "summary"]))
    if p.tasks:
        print("\ntasks (core info PLUGIN:TASK lists options):")
        for t in p.tasks.values():
            print(f"  {p.name}:{t.name:<12} {t.summary}")
    return 0


def _component_info(reg, qualname: str) -> int:
    """A component's builder arguments (this imports the builder's module, so it may load torch)."""
    import inspect

    from .context import load_ref

    _, comp = reg.component(qualname)
    print(f"{qualname}: {comp.kind} - {comp.summary}")
    print(f"  produces: {', '.join(comp.produces) or '-'}; consumes: {', '.join(comp.consumes) or '-'}")
    params = list(inspect.signature(load_ref(comp.builder)).parameters.values())[1:]  # after ctx
    rows = []
    for p in params:
        if p.kind is p.VAR_KEYWORD:
            rows.append([f"**{p.name}", "", "passed on (e.g. to the HF config)"])
            continue
        default = comp.defaults.get(p.name, p.default)
        shown = "(required)" if default is inspect.Parameter.empty else json.dumps(default, default=str)
        rows.append([p.name, shown, "declared default" if p.name in comp.defaults else ""])
    print("\narguments (model_args / data_args / ... in a task's config):")
    print(_table(rows, ["argument", "default", ""]))
    return 0


def _task_info(reg, qualname: str) -> int:
    from .config import describe, load_yaml
    from .context import load_ref

    p, t = reg.task(qualname)
    print(f"{qualname}: {t.summary}")
    default_file = p.config_file(t.name)
    if default_file:
        print(f"  default config: {default_file}")
    presets = p.presets(t.name)
    if presets:
        print(f"  presets (--config NAME): {', '.join(presets)}")
    schema = load_ref(t.schema)
    if schema.__doc__ and not schema.__doc__.startswith(schema.__name__ + "("):
        print(f"  {schema.__doc__.strip()}")
    defaults = load_yaml(default_file) if default_file else {}
    rows = []
    for row in describe(schema):
        node = defaults
        for k in row["name"].split("."):
            node = node.get(k, "\0") if isinstance(node, dict) else "\0"
        value = row["default"] if node == "\0" else node
        rows.append([row["name"], row["type"], json.dumps(value, default=str), row["help"]])
    print("\noptions (--set name=value):")
    print(_table(rows, ["option", "type", "default", "help"]))
    if t.verify:
        print("\nverify (core verify " + qualname + "):")
        for c in t.verify:
            print(f"  {c.metric} {c.op} {c.other or c.value}   {c.summary}")
    if t.smoke:
        print("\nsmoke overrides: " + ", ".join(f"{k}={v}" for k, v in t.smoke.items()))
    return 0


def _options(args: argparse.Namespace, **kw):
    from .runner import RunOptions

    return RunOptions(
        config=getattr(args, "config", None),
        overrides=list(getattr(args, "set", None) or []),
        out=getattr(args, "out", None),
        resume=getattr(args, "resume", False),
        seed=args.seed,
        device=args.device,
        smoke=args.smoke,
        threads=args.threads,
        workers=getattr(args, "workers", 1),
        executor=getattr(args, "executor", "local"),
        address=getattr(args, "address", None),
        **kw,
    )


def cmd_run(args: argparse.Namespace) -> int:
    from .context import is_main_process
    from .runner import execute

    if args.resume and args.config:
        raise UserError(
            f"--resume continues with the run's saved {args.out or '<out>'}/config.yaml; drop --config {args.config} "
            "(--set still overrides single options)"
        )
    out, metrics = execute(args.task, _options(args))
    if is_main_process():
        _print_metrics(metrics)
        print(f"\nrun folder: {out}")
    return 0


def _print_metrics(metrics: dict) -> None:
    rows = [[k, f"{v:.6g}" if isinstance(v, float) else str(v)] for k, v in sorted(metrics.items())]
    if rows:
        print(_table(rows, ["metric", "value"]))


def cmd_verify(args: argparse.Namespace) -> int:
    from .claims import verify
    from .io import read_json
    from .runner import execute

    reg = _registry()
    _, task = reg.task(args.task)
    if not task.verify:
        raise UserError(f"{args.task} declares no verify checks")
    if args.from_dir:
        metrics = read_json(Path(args.from_dir) / "metrics.json")
        out = args.from_dir
    else:
        out, metrics = execute(args.task, _options(args))
    results = verify(reg, args.task, metrics)
    for check, ok, msg in results:
        print(f"{'PASS' if ok else 'FAIL'}  {msg}" + (f"   ({check.summary})" if check.summary else ""))
    passed = all(ok for _, ok, _ in results)
    print(f"\n{args.task}: {'verified' if passed else 'NOT verified'} ({out})")
    return 0 if passed else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from .claims import verify
    from .runner import execute

    reg = _registry()
    names = args.plugins or [p.name for p in reg.healthy() if "demo" in p.tasks]
    rows, failed = [], 0
    for name in names:
        qual = f"{name}:demo"
        reg.task(qual)
        print(f"\n=== {qual}", flush=True)
        out = Path(args.out) / name if args.out else None
        try:
            out, metrics = execute(qual, _options(args), out=out)
        except UserError:
            raise
        except Exception as exc:  # one failing demo must not hide the others' results
            failed += 1
            rows.append([qual, "ERROR", f"{type(exc).__name__}: {exc}"[:100]])
            continue
        results = verify(reg, qual, metrics)
        ok = all(r[1] for r in results)
        failed += not ok
        rows.append([qual, "pass" if ok else "FAIL", "; ".join(r[2] for r in results) or str(out)])
    print("\n" + _table(rows, ["demo", "claim", "measured"]))
    return 1 if failed else 0


def cmd_runs(args: argparse.Namespace) -> int:
    """Run folders under DIR (their run.json): task, status, start, headline metrics, inputs."""
    from .io import read_json
    from .provenance import MANIFEST, read_manifest

    root = Path(args.dir)
    if not root.is_dir():
        raise UserError(f"{root} is not a folder; pass the folder that holds your runs (default runs/)")
    reg = _registry()
    rows = []
    for manifest_path in sorted(root.rglob(MANIFEST)):
        out = manifest_path.parent
        m = read_manifest(out)
        qual = f"{m.get('plugin')}:{m.get('task')}"
        metrics = read_json(out / "metrics.json") if (out / "metrics.json").is_file() else {}
        try:
            _, task = reg.task(qual)
            keys = [c.metric for c in task.verify]
        except UserError:
            keys = []
        keys = keys or [k for k, v in metrics.items() if isinstance(v, float)][:3]
        shown = ", ".join(f"{k}={metrics[k]:.4g}" for k in keys if isinstance(metrics.get(k), (int, float)))
        # each input: the config field, the run folder, its task and the contract it supplied
        inputs = ", ".join(f"{field}={Path(i['run']).name} ({i.get('task', '?')}, {i.get('contract', '?')})"
                           for field, i in m.get("inputs", {}).items())
        rows.append([str(out), qual, m.get("status", "?"), str(m.get("started", ""))[:19], shown, inputs or "-"])
    if not rows:
        print(f"no run folders (with {MANIFEST}) under {root}")
        return 0
    print(_table(rows, ["run", "task", "status", "started", "metrics", "inputs"]))
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import doctor

    return doctor(_registry(), args.plugin)


def cmd_check(args: argparse.Namespace) -> int:
    from .testing import check_plugin

    reg = _registry()
    names = [args.plugin] if args.plugin else [p.name for p in reg.plugins.values()]
    bad = 0
    for name in names:
        results = check_plugin(name, run_demo=not args.no_run, reg=reg)
        for label, ok, msg in results:
            print(f"{'ok  ' if ok else 'FAIL'}  {name}: {label}" + (f" - {msg}" if msg else ""))
        bad += sum(not ok for _, ok, _ in results)
    print(f"\n{'all checks passed' if not bad else f'{bad} check(s) failed'}")
    return 1 if bad else 0


def cmd_new(args: argparse.Namespace) -> int:
    from .scaffold import scaffold

    path = scaffold(args.name, Path(args.dir))
    print(f"created {path}\nnext: pip install -e {path} && core check {args.name}")
    return 0


def cmd_available(args: argparse.Namespace) -> int:
    from .registry_file import load_registry

    reg_path, entries = load_registry(args.registry)
    installed = {p.name for p in _registry().plugins.values()}
    rows = [[e["name"], e["version"], "yes" if e["name"] in installed else "", e["summary"]] for e in entries]
    print(_table(rows, ["plugin", "version", "installed", "summary"]))
    print(f"\n(from {reg_path}; `core install NAME` installs one)")
    return 0


def cmd_install(args: argparse.Namespace) -> int:
    from .registry_file import install

    return install(args.plugin, args.registry, dry_run=args.dry_run, pip_args=args.pip_args)


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="core", description="paperloom: research papers as runnable plugins")
    ap.add_argument("--version", action="version", version=f"paperloom-core {__version__}")
    ap.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    debug = argparse.ArgumentParser(add_help=False)  # --debug works after the subcommand too
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    _add = sub.add_parser
    sub.add_parser = lambda *a, **k: _add(*a, parents=[debug], **k)  # type: ignore[method-assign]

    p = sub.add_parser("list", help="installed plugins, their components and tasks (and broken ones)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_list)

    p = sub.add_parser("info", help="a plugin's components and tasks, or a task's options (P:T)")
    p.add_argument("target", metavar="PLUGIN[:TASK]")
    p.set_defaults(fn=cmd_info)

    def run_options(p: argparse.ArgumentParser, config: bool = True) -> None:
        if config:
            p.add_argument(
                "--config", metavar="PRESET|FILE", help="a preset name (core info P:T lists them) or a YAML file"
            )
        p.add_argument(
            "--set", action="extend", nargs="+", metavar="KEY=VALUE", help="dotted overrides, e.g. trainer.max_steps=10"
        )
        p.add_argument("--out", metavar="DIR", help="run folder (default: a new folder under runs/)")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
        p.add_argument("--smoke", action="store_true", help="apply the task's smoke overrides (tiny sizes, seconds)")
        p.add_argument("--threads", type=int, default=0, help="cap torch CPU threads (0 = torch's default)")
        p.add_argument("--workers", type=int, default=1, help="processes for map-style work (ctx.map)")
        p.add_argument("--executor", default="local", choices=["local", "ray"], help="ctx.map backend")
        p.add_argument("--address", metavar="HOST:PORT", help="a running Ray cluster (--executor ray)")

    p = sub.add_parser("run", help="run PLUGIN:TASK")
    p.add_argument("task", metavar="PLUGIN:TASK")
    run_options(p)
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.set_defaults(fn=cmd_run)

    p = sub.add_parser("verify", help="run a task and check the claims it declares (or check --from DIR)")
    p.add_argument("task", metavar="PLUGIN:TASK")
    run_options(p, config=False)
    p.add_argument("--from", dest="from_dir", metavar="DIR", help="check an existing run folder instead of running")
    p.set_defaults(fn=cmd_verify)

    p = sub.add_parser("demo", help="every installed plugin's demo task on its embedded default: the main job")
    p.add_argument("plugins", nargs="*", metavar="PLUGIN")
    p.add_argument("--out", metavar="DIR", help="parent folder for the demo runs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--threads", type=int, default=0, help="cap torch CPU threads (0 = torch's default)")
    p.set_defaults(fn=cmd_demo)

    p = sub.add_parser("runs", help="run folders with status, task, headline metrics and inputs")
    p.add_argument("dir", nargs="?", default="runs", metavar="DIR")
    p.set_defaults(fn=cmd_runs)

    p = sub.add_parser("doctor", help="check what plugins need (packages, GPU, memory) before running")
    p.add_argument("plugin", nargs="?")
    p.set_defaults(fn=cmd_doctor)

    p = sub.add_parser("check", help="run the conformance kit on a plugin (or all)")
    p.add_argument("plugin", nargs="?")
    p.add_argument("--no-run", action="store_true", help="skip running the demo task")
    p.set_defaults(fn=cmd_check)

    p = sub.add_parser("new", help="scaffold a new plugin package")
    p.add_argument("name")
    p.add_argument("--dir", default=".", help="parent folder (default: here)")
    p.set_defaults(fn=cmd_new)

    p = sub.add_parser("available", help="plugins listed in registry.yaml")
    p.add_argument("--registry", metavar="FILE")
    p.set_defaults(fn=cmd_available)

    p = sub.add_parser("install", help="pip-install a plugin listed in registry.yaml")
    p.add_argument("plugin")
    p.add_argument("--registry", metavar="FILE")
    p.add_argument("--dry-run", action="store_true", help="print the pip command only")
    p.set_defaults(pip_args=[])  # `core install NAME -- --target DIR`: what follows -- goes to pip
    p.set_defaults(fn=cmd_install)
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "install" in argv and "--" in argv:  # pip's own arguments
        at = argv.index("--")
        argv, extra = argv[:at], argv[at + 1 :]
    args = ap.parse_args(argv)
    if extra:
        args.pip_args = extra
    if not getattr(args, "fn", None):
        ap.print_help()
        return 0
    debug = args.debug or os.environ.get("PAPERLOOM_DEBUG") == "1"
    try:
        return args.fn(args)
    except UserError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `core list | head`: the reader left; say nothing more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
