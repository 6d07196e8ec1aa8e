"""The library behind the pipeline's stages (stages/*.py are its entry points, one per DVC stage).

    core/           what every stage uses: paths, the class list, params.yaml, atomic writes, errors,
                    and TensorFlow made quiet and deterministic (core/runtime.py)
    download        fetching the photos' archive: checked, resumable (the download stage)
    raw_photos      the raw photos from a folder or straight out of a zip archive; archives not to trust
    images          decoding image files, judging which are usable, tf.data batches of them
    splitting       finding the raw photos of each class and cutting the train/validation/test subsets
    conv_base       the frozen keras.applications conv base
    engines         running it: Keras or OpenVINO; quantization: the int8 conv base (NNCF)
    features        conv-base features: written to .npy files and streamed back, batch by batch
    model           the dense head, its training, the exported classifier
    keras_private   the fused RMSprop: the one module that reads Keras's private names, checked at import
    evaluation      metrics.json and the per-image test predictions
    figures         the training curves, ROC and precision-recall points, galleries of photos
    heatmaps        what the classifier saw: Grad-CAM heatmaps (the heatmaps stage, predict.py --explain)
    label_issues    which labels look wrong: out-of-sample probabilities, confident learning (cleanlab)
    page            the page of `dvc plots show`, with the Vega libraries inlined (the page stage)
    opt_in          the switch of augment and finetune (finetune.enabled): off, a note and no TensorFlow
    end_to_end      training conv base and head on images (augment); finetuning: unfreezing (finetune)
    checks          every stage's parameter checks at once, for the check stage (no TensorFlow);
                    what needs the conv base's layers: finetuning.check_layers (check_model)

Library code raises exceptions (core.errors.UserError and its kinds, ParamError and DiskFull); the
stages turn them into one line and exit status 1 (core.errors.run_stage).
"""
