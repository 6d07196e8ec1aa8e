"""The page that `dvc plots show` and `dvc plots diff` write, readable with no network (the page stage).

DVC's own page loads Vega, Vega-Lite and Vega-Embed from a CDN: offline, its charts never appear.
DVC takes a page of one's own instead (`plots.html_template` in .dvc/config, relative to .dvc/),
with `{plot_divs}` where the charts go; each chart is a <div> whose script calls `vegaEmbed` at
once. This page therefore defines `vegaEmbed` in <head>, inlined: the JavaScript bundle of the
vl-convert-python package (pinned in requirements.txt), which puts `vega`, `vegaLite` and
`vegaEmbed` on `window`. DVC's charts are Vega-Lite 5 specifications, hence VEGA_LITE_VERSION.
"""

from dogs_vs_cats.core.errors import UserError

VEGA_LITE_VERSION = "5.21"
PLACEHOLDER = "{plot_divs}"  # DVC fills it; "{scripts}" would be filled with the CDN's script tags
INSTALL_PINNED = "install the vl-convert-python that requirements.txt pins (pip install -r requirements.txt)"

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


def page_template() -> str:
    """The page template: PAGE with the JavaScript bundle inlined and DVC's placeholder for the charts.

    Raises a UserError when the installed vl-convert-python has no Vega-Lite VEGA_LITE_VERSION, or
    when its bundle holds one of DVC's placeholders.
    """
    import vl_convert

    try:
        bundle = vl_convert.javascript_bundle(vl_version=VEGA_LITE_VERSION)
    except RuntimeError as error:  # its message goes on with a Rust backtrace: the first line says it
        if not str(error).startswith("Unsupported Vega-Lite version"):
            raise
        raise UserError(f"error: the installed vl-convert-python has no Vega-Lite {VEGA_LITE_VERSION}, "
                        f"the version of DVC's charts. Fix: {INSTALL_PINNED}") from None
    found = [marker for marker in ("{plot_divs}", "{scripts}", "{refresh_tag}") if marker in bundle]
    if found:
        raise UserError(f"error: the Vega bundle of vl-convert-python holds {found[0]}, a placeholder "
                        f"that DVC would fill. Fix: {INSTALL_PINNED}, or pin another version there")
    # Inside a <script> element, "</script" would end it: escaped, it is the same JavaScript string.
    bundle = bundle.replace("</script", "<\\/script")
    return PAGE.replace("PLOTS", PLACEHOLDER).replace("BUNDLE", bundle)
