// Geometry computed on the server (bar widths and offsets, colours) travels in a
// data-css attribute, not a style attribute: the Content-Security-Policy refuses
// inline styles, while styles set through the CSSOM from a script of our own are allowed.
// Live updates replace parts of the page, so new elements are styled as they arrive.
(function () {
  "use strict";
  function apply(root) {
    if (root.nodeType !== 1) return;
    if (root.hasAttribute("data-css")) root.style.cssText = root.getAttribute("data-css");
    root.querySelectorAll("[data-css]").forEach(function (el) {
      el.style.cssText = el.getAttribute("data-css");
    });
  }
  apply(document.documentElement);
  new MutationObserver(function (mutations) {
    mutations.forEach(function (m) { m.addedNodes.forEach(apply); });
  }).observe(document.documentElement, {childList: true, subtree: true});
})();
