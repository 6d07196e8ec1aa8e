"""What every stage uses: paths, the class list, params.yaml, atomic writes, errors, the TensorFlow runtime.

One folder, one DVC dependency: every stage lists `dogs_vs_cats/core` in its deps. Only runtime.py
imports TensorFlow; the other modules are cheap to import.
"""
