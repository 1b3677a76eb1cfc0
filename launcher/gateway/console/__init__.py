"""The operator's front: the console (/ui), its event stream, logs over HTTP and device telemetry."""
