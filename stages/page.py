"""Write the page template of `dvc plots show` and `dvc plots diff`: python -m stages.page

plots/page_template.html is DVC's page with the Vega libraries inlined from the vl-convert-python
package, so that the charts render with no network; .dvc/config points `plots.html_template` at
it (dogs_vs_cats/page.py).
"""

from dogs_vs_cats.core.atomic import atomic_path
from dogs_vs_cats.core.errors import run_stage
from dogs_vs_cats.core.layout import PAGE_TEMPLATE
from dogs_vs_cats.page import page_template


def main():
    page = page_template()
    with atomic_path(PAGE_TEMPLATE) as tmp:
        tmp.write_text(page, encoding="utf-8")
    print(f"wrote {PAGE_TEMPLATE} ({len(page.encode()) / 2**20:.1f} MiB)")


if __name__ == "__main__":
    run_stage(main)
