"""The HTML drift report: one self-contained page with the verdict, every feature and its histogram."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd

from modelward.drift import build_profile, compare_profiles, compare_samples, profile_predictions
from modelward.drift.html import Histogram, numeric_bin_labels, profile_histograms, render_html


class Page(HTMLParser):
    """Collects tags, section ids and external references of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.sections: dict[str, int] = {}  # section id -> number of svg charts in it
        self.external: list[str] = []
        self._section: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        a = dict(attrs)
        if tag == "section":
            self._section = a.get("id") or ""
            self.sections[self._section] = 0
        if tag == "svg" and self._section is not None:
            self.sections[self._section] += 1
        for key in ("src", "href"):
            value = a.get(key)
            if value and not value.startswith("#"):
                self.external.append(value)


def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)
    ref = pd.DataFrame(
        {
            "age": rng.normal(40, 10, 6_000),
            "plan": rng.choice(["free", "pro", "<team & co>"], 6_000),
            "flag": rng.choice([0.0, 1.0], 6_000),
        }
    )
    cur = pd.DataFrame(
        {
            "age": rng.normal(46, 10, 5_000),
            "plan": rng.choice(["free", "pro", "<team & co>", "new"], 5_000),
            "flag": rng.choice([0.0, 1.0], 5_000),
        }
    )
    return ref, cur


def test_live_report_page_has_the_verdict_every_feature_and_a_histogram_each() -> None:
    ref, cur = frames()
    rng = np.random.default_rng(1)
    probabilities = rng.dirichlet([2, 3], 6_000)
    labels = probabilities.argmax(axis=1)
    reference = build_profile(ref).with_prediction(profile_predictions(labels, probabilities, [0, 1]))
    window = reference.observe(cur, labels[:5_000], probabilities[:5_000])
    report = compare_profiles(reference, window)
    histograms = profile_histograms(reference, window)
    assert set(histograms) == {"age", "plan", "flag", "output:prediction", "output:score"}
    assert histograms["plan"].current[-1] == (cur["plan"] == "new").sum()  # the "other" bucket

    page_text = render_html(report, histograms, title="Drift of churn", context={"window": "last hour"})
    page = Page()
    page.feed(page_text)
    assert page_text.startswith("<!DOCTYPE html>")
    assert "script" not in page.tags and "link" not in page.tags and "img" not in page.tags
    assert page.external == []
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", page_text)  # only the SVG namespace
    assert "Dataset drift" in page_text and "2 of 3 features drifted" in page_text
    assert "prediction drift" in page_text
    for verdict in (*report.features, *report.prediction):
        assert f">{verdict.feature}<" in page_text
    assert len(page.sections) == 5 and all(n == 1 for n in page.sections.values())
    assert "&lt;team &amp; co&gt;" in page_text and "<team & co>" not in page_text  # escaped
    assert "last hour" in page_text


def test_two_file_page_uses_the_reference_quantile_bins_and_trims_long_vocabularies() -> None:
    ref, cur = frames()
    report = compare_samples(ref, cur)
    edges = (1.0, 2.0, 3.0)
    histograms = {
        "age": Histogram("age", "numeric", numeric_bin_labels(edges), (0, 5, 5, 0), (1, 2, 6, 3)),
        "plan": Histogram(
            "plan", "categorical", tuple(f"c{i}" for i in range(40)), tuple(range(40)), (1,) * 40
        ),
    }
    assert numeric_bin_labels(edges) == ("< 1", "[1, 2)", "[2, 3]", "> 3")
    assert numeric_bin_labels((7.0,)) == ("< 7", "= 7", "> 7")
    trimmed = histograms["plan"].trimmed()
    assert len(trimmed.bins) == 30 and trimmed.bins[-1] == "(11 more)"
    assert sum(trimmed.reference) == sum(range(40))
    page_text = render_html(report, histograms)
    page = Page()
    page.feed(page_text)
    assert page.sections == {"f-0": 1, "f-1": 1, "f-2": 0}  # no histogram given for flag
    assert "no histogram for this feature" in page_text
    assert page_text.count("<rect") == 2 * 4 + 2 * 30
