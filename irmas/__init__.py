"""Musical instrument recognition on the 11 IRMAS classes.

`irmas.hub.load_model` gives a model, `irmas.predict.predict_file` its answer for a recording;
`python -m irmas --help` lists the command-line tools.
"""

__version__ = "0.1.0"
