// The console's one script: HTMX swaps the page on 4xx answers too (a refused contact is a
// 409 whose page says the rule and the next allowed time; a bad form a 400 saying why).
document.addEventListener("DOMContentLoaded", function () {
  if (window.htmx) {
    htmx.config.responseHandling = [
      { code: "204", swap: false },
      { code: "[23]..", swap: true },
      { code: "[4]..", swap: true, error: false },
      { code: "...", swap: false, error: true },
    ];
  }
});
