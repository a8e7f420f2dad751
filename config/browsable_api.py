"""DRF's browsable API under the site's Content-Security-Policy, without inline styles
allowed anywhere else.

DRF's page (rest_framework/base.html) carries two inline styles: the Pygments
stylesheet in a ``<style>`` element, and one ``style`` attribute on its Filters and
Extra Actions buttons. The browsable page alone allows exactly those, by their
SHA-256 hashes (``style-src`` for the element, ``'unsafe-hashes'`` in
``style-src-attr`` for the attribute); an inline style injected into the page would
match no hash and stays refused.
"""

import base64
import hashlib

from django.utils.html import conditional_escape
from rest_framework import renderers

# The style attributes of DRF's rest_framework/base.html, as written there.
DRF_STYLE_ATTRIBUTES = ("float: right; margin-right: 10px",)


def csp_hash(text: str) -> str:
    digest = hashlib.sha256(text.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


class BrowsableAPIRenderer(renderers.BrowsableAPIRenderer):
    def get_context(self, data, accepted_media_type, renderer_context):
        context = super().get_context(data, accepted_media_type, renderer_context)
        update = {"style-src-attr": ["'unsafe-hashes'",
                                     *(csp_hash(s) for s in DRF_STYLE_ATTRIBUTES)]}
        if context.get("code_style"):
            # The template writes it escaped ({{ code_style }}): that is the text hashed.
            update["style-src"] = [csp_hash(str(conditional_escape(context["code_style"])))]
        # Read by django-csp's middleware, as its csp_update decorator sets it.
        renderer_context["response"]._csp_update = update
        return context
