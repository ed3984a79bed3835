"""Where readers run the book: Binder (binder/, read by repo2docker instead of the
top-level files), JupyterLab with MyST rendered, the GitHub Pages workflow, and
the one place that names the repository. Nothing here needs the network: the
PyTorch CPU index cannot be reached from the machines this is tested on, so
binder/requirements.txt is read with pip's own requirements parser and checked
against constraints.txt; the workflow is read as YAML and every command it runs
is checked to exist here."""
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
BINDER = REPO / "binder"
WORKFLOW = REPO / ".github" / "workflows" / "pages.yml"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def pip_parse(path: Path, constraint=False):
    """(requirement text, is constraint, options) of every line, nested files included (pip's parser)."""
    from pip._internal.network.session import PipSession
    from pip._internal.req.req_file import parse_requirements
    return [(r.requirement, r.constraint, r.options) for r in parse_requirements(str(path), PipSession(),
                                                                                 constraint=constraint)]


def test_binder_folder_shadows_the_top_level_files():
    for f in ("requirements.txt", "runtime.txt", "apt.txt", "postBuild", "start"):
        assert (BINDER / f).is_file(), f"binder/{f} missing"
    for f in ("postBuild", "start"):
        assert os.access(BINDER / f, os.X_OK), f"binder/{f} is not executable"
    # repo2docker ignores these beside binder/: a copy there would be dead
    assert not [f for f in ("postBuild", "apt.txt", "runtime.txt", "environment.yml", "start")
                if (REPO / f).exists()]


def test_binder_requirements_take_cpu_only_torch_from_the_pytorch_index_within_the_constraints():
    text = (BINDER / "requirements.txt").read_text()
    assert f"--extra-index-url {CPU_INDEX}" in text
    parsed = pip_parse(BINDER / "requirements.txt")
    reqs = [Requirement(r) for r, c, _ in parsed if not c]
    pins = {canonicalize_name(Requirement(r).name): Requirement(r) for r, c, _ in parsed if c}
    torch = [r for r in reqs if r.name == "torch"]
    cpu = [r for r in torch if any(s.operator == "==" and s.version.endswith("+cpu") for s in r.specifier)]
    assert len(cpu) == 1, f"no torch==<version>+cpu in binder/requirements.txt: {torch}"
    version = next(iter(cpu[0].specifier)).version
    for r in torch:                   # the top-level requirements.txt's bounds, and constraints.txt's pin
        assert r.specifier.contains(version), f"{version} outside {r}"
    assert pins["torch"].specifier.contains(version), f"constraints.txt {pins['torch']} refuses {version}"
    assert {"jupyterlab", "jupyterlab-myst", "jupytext", "papermill"} <= {canonicalize_name(r.name) for r in reqs}
    assert not [r for r in reqs if r.name == "torchaudio"]


def test_runtime_python_matches_constraints_and_the_workflow():
    runtime = (BINDER / "runtime.txt").read_text().strip()
    assert re.fullmatch(r"python-3\.\d+", runtime)
    minor = runtime.removeprefix("python-")
    assert f"(Python {minor}." in (REPO / "constraints.txt").read_text().splitlines()[0]
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["build"]["steps"]
    setup = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python"))
    assert str(setup["with"]["python-version"]) == minor


def _scripts(command: str) -> list[str]:
    return [m.rstrip(".") for m in re.findall(r"(?:^|[\s;&|])((?:scripts|binder)/[\w./-]+)", command)]


def test_every_script_that_binder_and_the_workflow_run_exists_and_parses():
    cmds = [(BINDER / "postBuild").read_text()]
    wf = yaml.safe_load(WORKFLOW.read_text())
    steps = wf["jobs"]["build"]["steps"]
    cmds += [s["run"] for s in steps if "run" in s]
    named = {s for c in cmds for s in _scripts(c)}
    assert {"scripts/build_book.sh", "scripts/check_repository_url.py", "scripts/setup_lab.sh",
            "scripts/make_notebooks.py", "binder/requirements.txt"} <= named
    for s in named:
        assert (REPO / s).is_file(), f"{s} does not exist"
        if s.endswith(".sh") or s.startswith("binder/post"):
            assert os.access(REPO / s, os.X_OK), f"{s} is not executable"
            check = subprocess.run(["bash", "-n", str(REPO / s)], capture_output=True, text=True)
            assert check.returncode == 0, f"{s}: {check.stderr}"
        if s.endswith(".py"):
            compile((REPO / s).read_text(), s, "exec")
    build = next(s for s in steps if "build_book.sh" in s.get("run", ""))
    assert build["run"].strip() == "scripts/build_book.sh"
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-pages-artifact"))
    assert upload["with"]["path"] == "_build/html"
    assert "_build/html" in (REPO / "scripts/build_book.sh").read_text()
    publish = next(s["run"] for s in steps if "notebooks" in s.get("run", "") and "git push" in s["run"])
    assert "--collect _build/notebooks" in (REPO / "scripts/build_book.sh").read_text()
    assert "_build/notebooks/." in publish
    config = yaml.safe_load((REPO / "_config.yml").read_text())
    assert f"origin {config['repository']['branch']}" in publish      # the branch the buttons open
    assert wf["permissions"]["pages"] == "write" and wf["permissions"]["id-token"] == "write"
    assert wf["jobs"]["deploy"]["needs"] == "build"
    assert wf["jobs"]["deploy"]["steps"][0]["uses"].startswith("actions/deploy-pages@")
    assert "main" in wf[True]["push"]["branches"]       # YAML 1.1 reads the key `on` as True


def test_one_config_value_names_the_repository():
    config = yaml.safe_load((REPO / "_config.yml").read_text())
    url = config["repository"]["url"]
    assert config["launch_buttons"]["colab_url"] and config["launch_buttons"]["binderhub_url"]
    owner_repo = "/".join(url.rstrip("/").split("/")[-2:])
    for f in ("README.md", "CITATION.cff", "pyproject.toml", "binder/postBuild", "scripts/make_notebooks.py"):
        assert owner_repo not in (REPO / f).read_text(), f"{f} names the repository itself; read _config.yml"
    check = [sys.executable, str(REPO / "scripts" / "check_repository_url.py")]
    assert subprocess.run(check + [url + ".git"], capture_output=True).returncode == 0
    wrong = subprocess.run(check + ["https://github.com/someone/else"], capture_output=True, text=True)
    assert wrong.returncode == 1 and "_config.yml" in wrong.stderr and "someone/else" in wrong.stderr


def test_jupyterlab_loads_the_myst_and_jupytext_extensions():
    jupyter = Path(sys.executable).with_name("jupyter")
    if not jupyter.exists():
        pytest.skip("no jupyter in this environment")
    out = subprocess.run([str(jupyter), "labextension", "list"], capture_output=True, text=True)
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout + out.stderr)
    for ext in ("jupyterlab-myst", "jupyterlab-jupytext"):
        line = next((x for x in text.splitlines() if ext in x), "")
        assert "enabled" in line and line.rstrip().endswith(")") and " OK " in line, f"{ext}: {line!r}\n{text}"
    assert "not compatible" not in text, text


def test_the_notebooks_beside_the_chapters_are_not_pages_of_the_book():
    """The build writes book/**/*.ipynb beside the chapters (for the Colab and Binder
    buttons, which link to a same-named .ipynb when there is one); Sphinx must not
    read them as a second source of each page."""
    from sphinx.util.matching import Matcher
    excluded = Matcher(yaml.safe_load((REPO / "_config.yml").read_text())["exclude_patterns"])
    assert excluded("book/views.ipynb") and excluded("book/beyond/views.ipynb")
    assert not excluded("book/views.md") and not excluded("results/esc10/cpu/mel/fold1-seed0.ipynb")


def _publish_step() -> str:
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["build"]["steps"]
    return next(s["run"] for s in steps if "notebooks" in s.get("name", "") and "run" in s)


def test_the_pages_workflow_publishes_the_chapters_notebooks_without_generated_assets(tmp_path):
    """Runs the workflow's publishing step (all but the push) in a clone that looks like the build's:
    generated, git-ignored files beside the chapters (MathJax, the notebooks) and the build's notebooks;
    the commit on `notebooks` must add the chapters' notebooks and nothing else."""
    git = ["git", "-c", "init.defaultBranch=main", "-c", "user.name=t", "-c", "user.email=t@t"]
    work = tmp_path / "clone"
    for f in ("book/views.md", "book/beyond/views.md", ".gitignore"):
        (work / f).parent.mkdir(parents=True, exist_ok=True)
        (work / f).write_text((REPO / f).read_text())
    subprocess.run(git + ["init", "-q", str(work)], check=True)
    subprocess.run(git + ["add", "-A"], cwd=work, check=True)
    subprocess.run(git + ["commit", "-q", "-m", "main"], cwd=work, check=True)
    generated = ["book/_static/mathjax/tex-chtml-full.js", "book/_static/mathjax/output/chtml/fonts/woff-v2/a.woff",
                 "_build/html/index.html", "_build/notebooks/book/views.ipynb",
                 "_build/notebooks/book/beyond/views.ipynb", ".cache/mvbook/x.npz", "book/views.ipynb"]
    for f in generated:
        (work / f).parent.mkdir(parents=True, exist_ok=True)
        (work / f).write_text("{}")
    script = _publish_step().replace("git push", "true git push")
    env = dict(os.environ, GITHUB_SHA="0" * 40, GIT_CONFIG_GLOBAL=str(tmp_path / "gitconfig"))
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=work, env=env, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    added = subprocess.run(["git", "diff", "--name-only", "HEAD~1", "HEAD"], cwd=work, capture_output=True,
                           text=True, check=True).stdout.split()
    assert sorted(added) == ["book/beyond/views.ipynb", "book/views.ipynb"], added
    branch = subprocess.run(["git", "branch", "--show-current"], cwd=work, capture_output=True, text=True).stdout
    assert branch.strip() == "notebooks"


def test_a_blocked_mathjax_fetch_says_what_failed_and_what_to_do(tmp_path):
    env = dict(os.environ, MVBOOK_MATHJAX_DEST=str(tmp_path / "mathjax"), MVBOOK_CACHE=str(tmp_path / "cache"),
               MVBOOK_FETCH_TIMEOUT="5", npm_config_registry="http://127.0.0.1:9/",
               https_proxy="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9", MVBOOK_MATHJAX_TGZ="")
    t = time.time()
    out = subprocess.run([str(REPO / "scripts" / "fetch_mathjax.sh")], env=env, capture_output=True, text=True,
                         timeout=60)
    took = time.time() - t
    assert out.returncode == 1 and not (tmp_path / "mathjax").exists()
    for needed in ("could not download MathJax", "https://registry.npmjs.org", "SHA-256", "MVBOOK_MATHJAX_TGZ"):
        assert needed in out.stderr, f"{needed!r} not in:\n{out.stderr}"
    assert took < 30, f"a blocked fetch took {took:.0f} s"
    readme = (REPO / "README.md").read_text()
    for registry in ("PyPI", "registry.npmjs.org", "download.pytorch.org/whl/cpu"):
        assert registry in readme, f"the README does not name {registry}, which the build or Binder uses"
