"""Functions the Python invoke tests name by their dotted paths."""

import time

from runners import ActionFailed


def release_notes(context):
    source = next(iter(context.input_dirs.values()), None)
    files = sorted(p.name for p in source.iterdir()) if source else []
    for directory in context.output_dirs.values():
        (directory / "notes.txt").write_text(f"{context.pipeline_name}: {', '.join(files)}\n")
    context.log("notes written")
    return {"Files": len(files), "Channel": context.configuration.get("UserParameters", ""),
            "Execution": context.pipeline_execution_id}


def explode(context):
    raise ValueError("the release calendar is closed")


def refuse(context):
    raise ActionFailed("Change freeze until Monday")


def nothing(context):
    return None


def wrong_type(context):
    return ["not", "a", "dict"]


def patient(context):
    while not context.should_stop():
        time.sleep(0.02)
    return {"stopped": "yes"}


not_callable = 42
