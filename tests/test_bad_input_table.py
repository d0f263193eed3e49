"""One table of bad input: every row names the tests that prove its behaviour, and the README's
"Bad input" section is this table, rendered (a test checks they agree)."""

import importlib
from pathlib import Path

import pytest

from test_adversarial import ADVERSARIAL

ROOT = Path(__file__).resolve().parents[1]

#: (input, behaviour, tests that check it as "module::function").
BAD_INPUT = [
    ("uncalibrated energy axis (scale 1, offset 0, no units) with a window in eV",
     "`ValueError`: calibrate the axis (the message shows how)",
     ["test_bad_input::test_uncalibrated_energy_axis_with_window_in_eV"]),
    ("non-uniform energy axis",
     "`ValueError`: interpolate onto a uniform axis (`s.interpolate_on_axis`)",
     ["test_bad_input::test_non_uniform_energy_axis"]),
    ("window / `signal_range` outside the axis, reversed, or narrower than 3 (16) channels",
     "`ValueError` giving the axis range and dispersion",
     ["test_bad_input::test_window_outside_reversed_or_too_narrow",
      "test_bad_input::test_signal_range_outside_reversed_or_too_narrow"]),
    ("window inside the data but outside the model's energy range",
     "`ValueError` naming the model's energy range",
     ["test_guards_workflow::test_window_outside_the_models_range_says_so"]),
    ("single spectrum (no navigation axis), or more than 2 navigation axes",
     "`ValueError`: maps and line scans are supported; apply the method to each map of a stack",
     ["test_bad_input::test_not_a_map"]),
    ("map smaller than a given `shard_size` (the default `\"auto\"` fits every map of 8 × 8 pixels or more)",
     "`ValueError` suggesting a valid `shard_size`",
     ["test_bad_input::test_navigation_smaller_than_shard"]),
    ("NaN or inf",
     "**refused** (`ValueError`, suggesting `np.nan_to_num` on a copy or cropping): eager data up "
     "front, lazy data in the sampled training shards, in every inference block and scoring "
     "block — never masked silently",
     ["test_bad_input::test_nan_or_inf_refused_eager", "test_bad_input::test_nan_refused_lazy",
      "test_bad_input::test_nan_refused_lazy_fit"]),
    ("negative counts (e.g. after background subtraction)",
     "the default noise model (`noise=\"auto\"`) estimates the subtracted level as an offset and "
     "works on Poisson-equivalent counts; with `noise=\"counts\"` they are **clipped to 0** for the "
     "model, with a logged warning giving how many; the input is not modified",
     ["test_bad_input::test_negative_counts_clipped_with_warning",
      "test_bad_input::test_negative_counts_are_an_offset_for_the_noise_model"]),
    ("integer or float16 counts", "accepted; converted to float32 for the model (float64 for PCA); "
     "results are float", ["test_bad_input::test_integer_counts", "test_adversarial::test_adversarial"]),
    ("complex data, or non-numeric dtypes",
     "`TypeError`: take `s.real` or `abs(s)`; `to_cvae` refuses complex signals",
     ["test_bad_input::test_complex_data_refused", "test_bad_input::test_complex_signal_not_converted"]),
    ("checkpoint trained on another energy axis",
     "`ValueError`: different dispersion, misaligned channels or range not covered, each with the fix",
     ["test_bad_input::test_checkpoint_trained_on_another_energy_axis"]),
    ("corrupt, truncated or foreign checkpoint",
     "`ValueError`; read with `torch.load(weights_only=True)`, so a pickled payload is refused without running",
     ["test_bad_input::test_corrupt_or_foreign_checkpoint_refused_without_executing_code"]),
    ("`inject_shift` with \\|dE\\| ≥ window width, a mask of the wrong shape, or a negative `ramp`",
     "`ValueError` (the expected shape is given in array order, y × x)",
     ["test_bad_input::test_inject_shift_dE_larger_than_window",
      "test_bad_input::test_inject_shift_mask_of_wrong_shape",
      "test_guards_workflow::test_inject_shift_ramp_must_be_a_width"]),
    ("the truth mask returned by `inject_shift`",
     "a copy: editing it leaves `metadata.CVAE.injection.mask` unchanged",
     ["test_guards_workflow::test_truth_mask_is_a_copy_not_the_metadata_object"]),
    ("`inject_anomaly` on a cube that is not the generator's untouched output (measured data, "
     "cropped, scaled, already injected, or made without an integer `random_state`)",
     "`ValueError` saying why (it redraws the generator's counts; `inject_shift` works on any map)",
     ["test_anomaly_kinds::test_refuses_what_it_cannot_redraw",
      "test_anomaly_kinds::test_refuses_measured_data"]),
    ("`inject_anomaly` with an unknown kind, or a strength outside the kind's range",
     "`ValueError` listing the kinds, or giving the range and what the strength means",
     ["test_anomaly_kinds::test_bad_kind_or_strength"]),
    ("`noise=` of another string, a dict with other keys, or a gain that is not positive",
     "`ValueError` listing what `noise` accepts",
     ["test_noise::test_bad_noise_argument", "test_noise::test_given_model_and_bad_models"]),
    ("`metadata.Signal.Noise_properties.Variance_linear_model` that the data contradict (gain off by "
     "more than 2×), or with a gain that is not positive",
     "the data's estimate is used, with a logged warning, and both are recorded in "
     "`metadata.CVAE.noise` / `ValueError` naming the metadata",
     ["test_noise::test_metadata_model_is_read_and_checked"]),
    ("`direction=` other than \"both\", \"higher\" or \"lower\", or a direction with a score other "
     "than `\"shift\"` or with RX",
     "`ValueError` listing the directions, or saying that a direction applies to the shift score",
     ["test_direction::test_bad_direction"]),
    ("`nuisance=` other than \"scale\" or \"tilt\", or `\"tilt\"` with a score other than `\"shift\"` "
     "or with RX",
     "`ValueError` listing the nuisances, or saying that the tilt applies to the shift score",
     ["test_nuisance::test_bad_nuisance"]),
    ("`cvae_decomposition(refine=...)` other than a bool or an edge name; `refine_reconstruction` with a "
     "reconstruction of another grid or off the signal's channels, an edge outside its range, or no pre-edge "
     "channels before the onset",
     "`ValueError` naming the argument, the grids, the range, or asking for a range that starts before the edge",
     ["test_refine::test_refit_refuses_bad_input"]),
    ("`fdr` outside (0, 1), or not a number (`threshold=\"fdr\"` or `spatial=`)",
     "`ValueError`: a number in (0, 1)", ["test_fdr::test_bad_fdr"]),
    ("`score=\"auto\"` with a window of too few channels for its nuisances, or a bad `box`, "
     "`background_degree` or `seed_fraction`", "`ValueError` asking for a wider window or naming the argument",
     ["test_change::test_bad_arguments"]),
    ("`result.describe()` of an RX result (no reconstruction), `table(which=...)` with an unknown "
     "label, or a `seed` mask of the wrong shape or without counts",
     "`ValueError` naming what is missing or the labels and the grid expected",
     ["test_describe::test_bad_input", "test_describe::test_missing_edge_is_no_edge_and_a_glitch_an_outlier"]),
    ("all spectra identical",
     "`anomaly_map` returns no anomalies (`metadata.CVAE.threshold.decision` says why), without warnings",
     ["test_bad_input::test_anomaly_map_all_identical_spectra"]),
    ("all-zero (dead) pixels, a flat reconstruction, or a shift beyond `max_shift`",
     "shift and σ NaN with a reason code (`shift_analysis(...)[\"flag\"]`), never a value outside "
     "±`max_shift`; dead pixels get a NaN score, are never flagged and are counted "
     "(`metadata.CVAE.threshold.n_no_information`)",
     ["test_guards_workflow::test_uninformative_spectra_give_nan_and_a_reason",
      "test_guards_workflow::test_shift_beyond_the_search_range_is_flagged_not_clipped",
      "test_guards_workflow::test_anomaly_map_counts_uninformative_pixels_and_never_flags_them"]),
    ("`threshold=nan` (or inf, a bool, a string other than \"otsu\")",
     "`ValueError`: 'otsu' or a finite number",
     ["test_guards_workflow::test_threshold_must_be_otsu_or_a_finite_number"]),
    ("`plot_anomaly_results` with a truth of the wrong shape, or a numpy array as the mask",
     "`ValueError` giving both shapes / `TypeError` asking for the mask of `anomaly_map`",
     ["test_guards_workflow::test_plot_results_refuses_masks_it_cannot_draw"]),
    ("a dead energy channel (zero in every spectrum), or a dark offset that leaves channels empty "
     "after clipping (`s.data -= 200`)",
     "trains normally: the mean training spectrum is floored, the model reconstructs ~0 there, and a "
     "warning names the dead channels in eV",
     ["test_guards_cvae::test_mean_spectrum_floor_leaves_ordinary_values_bit_identical",
      "test_guards_cvae::test_dead_channel_trains_and_reconstructs_zero",
      "test_guards_cvae::test_dark_offset_trains_with_finite_losses"]),
    ("a training or validation loss, or a gradient, that becomes NaN/inf (eager or lazy)",
     "`NonFiniteTrainingError` (a `ValueError`) at the first such step, before it reaches the "
     "weights, naming the likely cause: dead channels, empty spectra, negative offsets, huge counts",
     ["test_guards_cvae::test_guard_names_the_dead_channel",
      "test_guards_cvae::test_guard_names_negative_offset_and_empty_spectra",
      "test_guards_cvae::test_guard_names_huge_counts",
      "test_guards_cvae::test_guard_catches_nonfinite_gradients",
      "test_guards_cvae::test_guard_checks_validation_eager_and_lazy",
      "test_guards_cvae::test_nan_in_a_validation_tile_refused_eager_and_lazy"]),
    ("values beyond the float32 range", "`ValueError` before training, eager and lazy",
     ["test_guards_cvae::test_values_beyond_float32_refused_up_front"]),
    ("bytes flipped inside a checkpoint's weights, or NaN/inf weights",
     "`ValueError`: the weights do not match their SHA-256, stored in the file",
     ["test_guards_cvae::test_checkpoint_stores_and_verifies_weights_checksum",
      "test_guards_cvae::test_checkpoint_with_nonfinite_weights_refused"]),
    ("hand-edited checkpoint metadata (wrong types, shapes, huge architectures)",
     "one `ValueError` naming the field, checked against a schema before anything is allocated",
     ["test_guards_cvae::test_hand_edited_metadata_refused_with_the_field_named",
      "test_guards_cvae::test_huge_architecture_refused_without_allocating",
      "test_guards_cvae::test_param_schema_covers_every_cvae_parameter"]),
    ("saving a model to a directory, a missing folder or a read-only folder",
     "`IsADirectoryError`, `FileNotFoundError` or `PermissionError` naming the path; the write is "
     "atomic (no half-written file)",
     ["test_guards_cvae::test_save_errors_name_the_path_and_reason"]),
    ("`fit_cvae(robust=True)` on a map without `edge=` or `metadata.Sample.elements`",
     "`ValueError`: the first pass's `anomaly_map` needs a scoring window (the message says so)",
     ["test_robust::test_robust_needs_a_window"]),
    ("`fit_cvae(robust=True)` whose first model flags more than half of the training pixels",
     "a warning; the first model is kept, and `metadata.CVAE.model.robust` says why",
     ["test_robust::test_too_many_flagged_warns_and_keeps_the_first_model"]),
    ("two `fit_cvae` calls at once in threads, same data and seed",
     "the same model as a sequential fit, bit for bit (training sections run one at a time)",
     ["test_guards_cvae::test_concurrent_fits_match_a_sequential_fit"]),
    ("lazy `.zspy`/`.hspy` deleted, truncated (missing chunks) or overwritten after `hs.load(lazy=True)`",
     "`ValueError` before any fit or scoring run, never zeros",
     ["test_guards_workflow::test_lazy_store_deleted_is_an_error_not_zeros",
      "test_guards_workflow::test_lazy_store_with_missing_chunks_is_an_error",
      "test_guards_workflow::test_lazy_store_overwritten_is_an_error",
      "test_guards_workflow::test_lazy_hdf5_deleted_is_an_error"]),
]


def render():
    """The README's "Bad input" tables, in Markdown."""
    lines = ["| input | behaviour |", "|---|---|"]
    lines += [f"| {inp} | {out} |" for inp, out, _ in BAD_INPUT]
    lines += ["", "More adversarial inputs, each a case of `tests/test_adversarial.py`:", "",
              "| input | outcome |", "|---|---|"]
    lines += [f"| {inp} | {out} |" for _, inp, out, *_ in ADVERSARIAL]
    return "\n".join(lines)


START, END = "<!-- bad-input:start -->", "<!-- bad-input:end -->"


def test_readme_quotes_the_table():
    readme = (ROOT / "README.md").read_text()
    assert readme.count(START) == 1 and readme.count(END) == 1
    block = readme.split(START, 1)[1].split(END, 1)[0]
    assert block.strip() == render().strip(), "update the README block with render():\n" + render()


@pytest.mark.parametrize("row", BAD_INPUT, ids=[r[0][:40] for r in BAD_INPUT])
def test_every_row_names_existing_tests(row):
    for name in row[2]:
        module, func = name.split("::")
        assert hasattr(importlib.import_module(module), func), name
