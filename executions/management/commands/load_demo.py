"""``manage.py load_demo [--reset]``: a demo pipeline that really works on a fresh machine.

Creates (idempotently; ``--reset`` starts over) under ``var/demo/``:

- ``app/`` — a real git repository of a tiny app with tests (branch main),
  with a ``post-commit`` hook that tells Conveyor about each commit
  (docs/post-receive.md);
- ``staging/`` and ``production/`` — the Directory deploy targets;

and the pipeline ``demo``: Source (Git) → Build (runs the tests with a
JUnit report, packages ``dist/``) → Staging (Directory deploy, then a smoke
test of the deployed copy) → Approval (Manual) → Production (Directory
deploy). Committing to ``var/demo/app`` starts an execution (the hook, or
polling within CONVEYOR_POLL_SECONDS).
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from pipelines import providers
from pipelines.models import Pipeline
from pipelines.services import pipeline_save

TEMPLATE = Path(__file__).resolve().parents[2] / "demo" / "app"
HOOK = Path(__file__).resolve().parents[2] / "demo" / "hooks" / "conveyor_hook.py"
PIPELINE = "demo"
GITIGNORE = "__pycache__/\n*.pyc\ndist/\nreports/\n"


def demo_dir() -> Path:
    return Path(settings.VAR_DIR) / "demo"


def definition(root: Path, *, approval_provider: str) -> dict:
    """The demo pipeline's definition document (CodePipeline's shape)."""
    def act(name, category, provider, **fields):
        return {"name": name, "actionTypeId": {"category": category, "owner": "Custom",
                                               "provider": provider, "version": "1"}, **fields}

    approval_config = {"CustomData": "Staging passed its smoke test: promote "
                                     "#{SourceVariables.CommitId} to production?"}
    if approval_provider == "Simulate":
        approval_config = {"Outcome": "Waiting",
                           "Summary": "Waiting (the Manual provider is not installed)"}
    return {
        "name": PIPELINE,
        "executionMode": "SUPERSEDED",
        "variables": [
            {"name": "StagingDir", "defaultValue": str(root / "staging"),
             "description": "Where Staging deploys"},
            {"name": "ProductionDir", "defaultValue": str(root / "production"),
             "description": "Where Production deploys"},
        ],
        "stages": [
            {"name": "Source", "actions": [
                act("Checkout", "Source", "Git", namespace="SourceVariables",
                    configuration={"RepositoryUrl": str(root / "app"), "BranchName": "main",
                                   "DetectChanges": "true"},
                    outputArtifacts=[{"name": "SourceOutput"}]),
            ]},
            {"name": "Build", "actions": [
                act("TestAndPackage", "Build", "Shell", namespace="BuildVariables",
                    commands=["python3 run_tests.py --junit reports/junit.xml",
                              "sh build.sh #{SourceVariables.CommitId}"],
                    configuration={"Reports": "reports/*.xml"},
                    inputArtifacts=[{"name": "SourceOutput"}],
                    outputArtifacts=[{"name": "Package", "files": ["dist/**/*"]}],
                    timeoutInMinutes=10),
            ]},
            {"name": "Staging", "actions": [
                act("Deploy", "Deploy", "Directory", runOrder=1,
                    configuration={"TargetDirectory": "#{variables.StagingDir}",
                                   "KeepReleases": "5"},
                    inputArtifacts=[{"name": "Package"}]),
                act("SmokeTest", "Test", "Shell", runOrder=2,
                    commands=['python3 "#{variables.StagingDir}/current/dist/smoke_test.py" '
                              '"#{variables.StagingDir}/current/dist" '
                              '"#{SourceVariables.CommitId}"'],
                    # The sandbox shows a build only its workspace: the deployed
                    # release is made readable by name.
                    configuration={"ReadablePaths": "#{variables.StagingDir}"},
                    timeoutInMinutes=5),
            ]},
            {"name": "Approval", "actions": [
                act("PromoteToProduction", "Approval", approval_provider,
                    configuration=approval_config),
            ]},
            {"name": "Production", "actions": [
                act("Deploy", "Deploy", "Directory",
                    configuration={"TargetDirectory": "#{variables.ProductionDir}",
                                   "KeepReleases": "5"},
                    inputArtifacts=[{"name": "Package"}]),
            ]},
        ],
    }


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout.strip()


def install_hook(repo: Path, *, url: str, secret: str) -> Path:
    """The post-commit hook (runs the shipped script with this Python) and its settings."""
    hook = repo / ".git" / "hooks" / "post-commit"
    hook.write_text("#!/bin/sh\n# Tells Conveyor about the new commit (docs/post-receive.md).\n"
                    f'exec "{sys.executable}" "{HOOK}" "$@"\n')
    hook.chmod(0o755)
    git(repo, "config", "conveyor.url", url)
    git(repo, "config", "conveyor.pipeline", PIPELINE)
    git(repo, "config", "conveyor.secret", secret)
    return hook


def create_repository(repo: Path) -> str:
    """A fresh repository holding the template app, one commit on main; its commit id."""
    shutil.copytree(TEMPLATE, repo, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (repo / ".gitignore").write_text(GITIGNORE)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Conveyor Demo")
    git(repo, "config", "user.email", "demo@conveyor.invalid")
    git(repo, "config", "commit.gpgsign", "false")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Initial commit of the demo shop")
    return git(repo, "rev-parse", "HEAD")


class Command(BaseCommand):
    help = ("Create (once) the demo: a local git repository of a tiny app under var/demo/ "
            "and the pipeline 'demo' that tests, packages, deploys, approves and releases it.")

    def add_arguments(self, parser):
        parser.add_argument("--reset", action="store_true",
                            help="delete var/demo/ (repository and deploy targets) first")

    def handle(self, *args, reset: bool = False, **options):
        root = demo_dir()
        if reset and root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True, exist_ok=True)
        repo = root / "app"
        if (repo / ".git").is_dir():
            self.stdout.write(f"Demo repository {repo} exists (kept).")
        else:
            if repo.exists():
                shutil.rmtree(repo)
            sha = create_repository(repo)
            self.stdout.write(f"Created the demo repository {repo} at {sha[:12]}.")
        approval = "Manual"
        if providers.get("Approval", "Manual") is None:
            approval = "Simulate"
            self.stderr.write("The Manual approval provider is not installed: the Approval "
                              "stage waits forever (Simulate) instead.")
        result = pipeline_save(document=definition(root, approval_provider=approval))
        pipeline = result.pipeline
        secret = pipeline.webhook_secret
        if not secret:
            secret = secrets.token_urlsafe(24)
            Pipeline.objects.filter(pk=pipeline.pk).update(webhook_secret=secret)
        install_hook(repo, url=settings.CONVEYOR_BASE_URL, secret=secret)
        self.stdout.write(
            f'Pipeline "{PIPELINE}" is at version {pipeline.version}. Commit to {repo} to '
            "start an execution, e.g.:\n"
            f"  cd {repo} && echo '# note' >> README.md && git commit -qam 'A change'")
