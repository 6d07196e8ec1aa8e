"""The page that `dvc plots show` and `dvc plots diff` write, readable with no network (the page stage).

DVC's own page loads Vega, Vega-Lite and Vega-Embed from a CDN: offline, its charts never appear.
DVC takes a page of one's own instead (`plots.html_template` in .dvc/config, relative to .dvc/),
with `{plot_divs}` where the charts go; each chart is a <div> whose script calls `vegaEmbed` at
once. This page therefore defines `vegaEmbed` in <head>, inlined: the JavaScript bundle of the
vl-convert-python package (pinned in requirements.txt), which puts `vega`, `vegaLite` and
`vegaEmbed` on `window`. DVC's charts are Vega-Lite 5 specifications, hence VEGA_LITE_VERSION.
"""

VEGA_LITE_VERSION = "5.21"
PLACEHOLDER = "{plot_divs}"  # DVC fills it; "{scripts}" would be filled with the CDN's script tags

PAGE = """<!DOCTYPE html>
<html>
<head>
    <meta charset="utf-8">
    <title>DVC plots</title>
    <!-- Vega, Vega-Lite and Vega-Embed from vl-convert-python (dogs_vs_cats/page.py): no network -->
    <script>
(function () {
BUNDLE
})();
    </script>
    <style>
        table { border-spacing: 15px; }
    </style>
</head>
<body>
    PLOTS
</body>
</html>
"""


def page_template():
    """The page template: PAGE with the JavaScript bundle inlined and DVC's placeholder for the charts."""
    import vl_convert

    bundle = vl_convert.javascript_bundle(vl_version=VEGA_LITE_VERSION)
    if any(marker in bundle for marker in ("{plot_divs}", "{scripts}", "{refresh_tag}")):
        raise RuntimeError("the Vega bundle holds a placeholder that DVC would fill: pin another "
                           "vl-convert-python in requirements.txt")
    # Inside a <script> element, "</script" would end it: escaped, it is the same JavaScript string.
    bundle = bundle.replace("</script", "<\\/script")
    return PAGE.replace("PLOTS", PLACEHOLDER).replace("BUNDLE", bundle)
