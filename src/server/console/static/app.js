// Berth console: the copy button and delete confirmations. Everything else works without JavaScript.
"use strict";
document.addEventListener("click", function (ev) {
  var btn = ev.target.closest("button[data-copy]");
  if (!btn) return;
  var input = document.getElementById(btn.getAttribute("data-copy"));
  var status = document.getElementById("copy-status");
  var done = function (ok) { if (status) status.textContent = ok ? "Copied" : "Select the text and copy it"; };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(input.value).then(function () { done(true); }, function () { done(false); });
  } else {
    input.select();
    done(document.execCommand && document.execCommand("copy"));
  }
});
document.addEventListener("submit", function (ev) {
  var msg = ev.target.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) ev.preventDefault();
});
