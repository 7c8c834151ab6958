// MathJax 3 for two sources of math: pymdownx.arithmatex (Markdown pages and docstrings: \( \)
// and \[ \] inside .arithmatex) and the notebooks, which nbconvert leaves as raw $ and $$ inside
// .jupyter-wrapper. Everything else on the page is left alone.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"], ["$", "$"]],
    displayMath: [["\\[", "\\]"], ["$$", "$$"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex|jupyter-wrapper",
  },
};

document$.subscribe(() => {
  MathJax.startup.output.clearCache();
  MathJax.typesetClear();
  MathJax.texReset();
  MathJax.typesetPromise();
});
