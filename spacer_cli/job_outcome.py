"""How the survey commands end: exit status, one-line errors, the summary.

Exit status: 0 done, 1 the job failed, 2 bad input (the CSV problems are
listed with their line numbers).
"""
from __future__ import annotations

import sys
from typing import Any, Callable

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def fail(text: str, status: int) -> int:
    print(f"spacer: error: {text}", file=sys.stderr)
    return status


def guarded(action: Callable[[], int]) -> int:
    """Run `action`, turning the errors a user can fix into messages, and
    the failures of the job's files and tasks into one line each (no
    traceback: the message names the file or task and the cause)."""
    # Loaded when the command runs, not when the parser is built (see spacer_cli/__init__.py).
    from spacer.exceptions import SpacerError
    from spacer_survey.csv_input import CsvInputError
    from spacer_survey.pipeline import JobError
    from workers.errors import RemoteError
    try:
        return action()
    except CsvInputError as err:
        return fail(f"problems in the input CSVs:\n{err}", EXIT_BAD_INPUT)
    except (FileNotFoundError, ValueError) as err:
        return fail(str(err), EXIT_BAD_INPUT)
    except JobError as err:
        return fail(str(err), EXIT_FAILED)
    except RemoteError as err:
        return fail(f"a task failed: {err}", EXIT_FAILED)
    except (SpacerError, OSError) as err:
        return fail(f"{type(err).__name__}: {err}", EXIT_FAILED)


def print_outcome(outcome: Any) -> None:
    """Where a finished job's results are (stdout, for scripts)."""
    accuracy = ('n/a' if outcome.accuracy is None
                else f"{100 * outcome.accuracy:.1f}%")
    print(f"Validation accuracy: {accuracy}")
    print(f"Predictions: {outcome.predictions_csv} "
          f"({outcome.points_classified} points)")
    print(f"Cover:       {outcome.cover_csv}")
    print(f"For CoralNet's annotation upload: {outcome.upload_csv}")
    print(f"Classifier:  {outcome.classifier}")
    print(f"Report:      {outcome.report}")
