from sagemaker_emu.metrics import RECENT, Metrics


def test_the_recent_calls_strip_is_bounded_and_goes_with_its_endpoint():
    metrics = Metrics()
    for n in range(RECENT + 5):
        metrics.invoked("kept", "AllTraffic", f"AllTraffic-{n % 2 + 1}", 0.01, 0.001)
        metrics.invoked("deleted", "AllTraffic", "AllTraffic-1", 0.01, 0.001)
    assert len(metrics.recent_calls("kept")) == RECENT and metrics.recent_calls("kept")[-1] == "AllTraffic-1"
    metrics.forget("kept", component="ic")  # a component going leaves its endpoint's strip
    metrics.forget("deleted")
    assert metrics.recent_calls("deleted") == [] and "deleted" not in metrics.recent
    assert len(metrics.recent_calls("kept")) == RECENT
