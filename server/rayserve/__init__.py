"""The model on Ray Serve: an autoscaled `LayeredModel` deployment behind a FastAPI ingress with the
Vertex prediction contract (`app.py`), its command line (`__main__.py`) and a subprocess wrapper for
benchmarks and tests (`process.py`)."""
