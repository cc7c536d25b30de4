"""Which labels the classifier learned, and why any other was left out.

pyspacer's rules decide (`preprocess_labels`): a label is trained only if it
is in both the training and the reference set, and the stratified point
split first drops labels with fewer than 3 annotations. Those rules drop a
label silently; this module names every such label with its count, the
reason and what the user can do, so the run's counts always add up:
annotations = train + reference + validation + left out.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from spacer.data_classes import ImageLabels
from spacer.messages import TrainingTaskLabels


@dataclass(frozen=True)
class LabelUse:
    """One label of the annotations: where its points went."""
    label: str
    annotations: int
    images: int
    train: int = 0
    ref: int = 0
    val: int = 0
    reason: str = ''      # why it is left out ('' when trained)
    fix: str = ''

    @property
    def trained(self) -> bool:
        return not self.reason


@dataclass(frozen=True)
class Coverage:
    """Every label of the annotations, trained ones first."""
    labels: list[LabelUse]

    @property
    def left_out(self) -> list[LabelUse]:
        return [use for use in self.labels if not use.trained]

    @property
    def not_validated(self) -> list[LabelUse]:
        return [use for use in self.labels if use.trained and not use.val]

    def totals(self) -> dict[str, int]:
        return {'annotations': sum(u.annotations for u in self.labels),
                'train': sum(u.train for u in self.labels),
                'ref': sum(u.ref for u in self.labels),
                'val': sum(u.val for u in self.labels),
                'left_out': sum(u.annotations for u in self.left_out)}


def _reason(split: str, annotations: int, images: int) -> tuple[str, str]:
    if split == 'points':
        if annotations < 3:
            return (f"only {annotations} annotation(s); the stratified point "
                    "split needs at least 3 (one per set)",
                    "annotate more points of it")
        return ("the stratified point split left none of it in the training "
                "or the reference set", "annotate more points of it")
    if images < 2:
        fix = ("use --split points, or annotate it in more images"
               if annotations >= 3 else "annotate it in more images")
        return ("all its annotations are in one image; holding out whole "
                "images needs it in at least 2 (one for training, one for "
                "the reference set)", fix)
    return ("no split of whole images put it in both the training and the "
            "reference set without taking another label's only training "
            "image", "use --split points, or annotate it in more images")


def _counts(labels: ImageLabels) -> Counter:
    counts: Counter = Counter()
    for key in labels.keys():
        counts.update(str(label) for _r, _c, label in labels[key])
    return counts


def coverage(all_labels: ImageLabels, split_labels: TrainingTaskLabels,
             split: str) -> Coverage:
    """Compare the annotations with the sets training got."""
    total = _counts(all_labels)
    images: Counter = Counter()
    for key in all_labels.keys():
        images.update({str(label) for _r, _c, label in all_labels[key]})
    per_set = {name: _counts(split_labels[name])
               for name in ('train', 'ref', 'val')}
    uses = []
    for label, count in total.items():
        train, ref, val = (per_set[n][label] for n in ('train', 'ref', 'val'))
        reason = fix = ''
        if not (train and ref):
            reason, fix = _reason(split, count, images[label])
        uses.append(LabelUse(label, count, images[label], train, ref, val,
                             reason, fix))
    uses.sort(key=lambda u: (not u.trained, -u.annotations, u.label))
    return Coverage(uses)


def describe_left_out(cover: Coverage) -> str:
    """The lines printed on screen about labels the classifier will not know
    ('' when every label is trained)."""
    lines = []
    for use in cover.left_out:
        lines.append(f"  {use.label}: {use.annotations} annotations on "
                     f"{use.images} image(s) left out: {use.reason}. "
                     f"Fix: {use.fix}.")
    if lines:
        lines.insert(0, f"{len(lines)} label(s) cannot be learned and are "
                        "left out (the classifier will never predict them):")
    for use in cover.not_validated:
        lines.append(f"  {use.label} is trained but has no validation point "
                     "(too few images to hold one out): its accuracy is not "
                     "measured.")
    return '\n'.join(lines)
