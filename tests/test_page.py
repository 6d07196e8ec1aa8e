"""dogs_vs_cats/page.py: the page template of `dvc plots show`, with the Vega libraries inlined."""

from dvc_render.html import HTML

from dogs_vs_cats.page import page_template


def test_the_template_has_dvc_s_placeholder_once_and_no_cdn():
    page = page_template()
    assert page.count("{plot_divs}") == 1 and "{scripts}" not in page
    assert "cdn.jsdelivr" not in page and "<script src" not in page
    # One inline script, in <head>, which defines vegaEmbed before DVC's charts call it.
    assert page.count("<script>") == 1 and page.count("</script") == 1
    assert page.index("window.vegaEmbed=") < page.rindex("</head>")


def test_dvc_fills_it():
    chart = '<div id = "Loss"><script type = "text/javascript">vegaEmbed("#Loss", {});</script></div>'
    filled = HTML(page_template()).with_element(chart).embed()
    assert chart in filled and "{plot_divs}" not in filled
