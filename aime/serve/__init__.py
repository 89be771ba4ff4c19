"""Serving a trained world model over HTTP with Ray Serve. See README.md.

config.py  ServeConfig: the application's typed arguments (checkpoint, batching, limits, replicas)
codec.py   frames <-> base64 PNG / uint8 lists (shared with aime.client; no Ray)
schemas.py the HTTP request and response bodies (pydantic, strict)
model.py   ServedModel: a plain class that batches encode / imagine requests on one model
http.py    the FastAPI app: limits, validation against the model, errors with request ids
app.py     the Ray Serve deployments and ``build_app``
"""
