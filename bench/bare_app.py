"""The baseline: a bare Flask route, served exactly as the real app is."""

from flask import Flask, jsonify

app = Flask("bare")


@app.get("/bare")
def bare():  # type: ignore[no-untyped-def]
    return jsonify(status="ok")
