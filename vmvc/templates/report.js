/* vmvc report: draw the charts, hide/show backends, sort and filter the raw samples. */
(function () {
  "use strict";
  var charts = [];
  var specs = JSON.parse(document.getElementById("vmvc-charts").textContent);
  var config = {
    displaylogo: false,
    responsive: true,
    showLink: false,
    showSendToCloud: false,
    modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d"],
    toImageButtonOptions: { format: "png", scale: 2 }
  };
  if (window.Plotly) {
    specs.forEach(function (spec) {
      var el = document.getElementById(spec.id);
      if (!el) { return; }
      window.Plotly.newPlot(el, spec.data, spec.layout, config);
      charts.push(el);
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("input[data-log-for]"), function (box) {
    box.addEventListener("change", function () {
      var gd = document.getElementById(box.getAttribute("data-log-for"));
      if (gd && window.Plotly) {
        window.Plotly.relayout(gd, { "yaxis.type": box.checked ? "log" : "linear", "yaxis.autorange": true });
      }
    });
  });

  var toggles = Array.prototype.slice.call(document.querySelectorAll("input[data-backend-toggle]"));
  var table = document.getElementById("sample-table");
  var rows = table ? Array.prototype.slice.call(table.tBodies[0].rows) : [];
  var filterBox = document.getElementById("sample-filter");
  var count = document.getElementById("sample-count");

  function hiddenBackends() {
    var hidden = {};
    toggles.forEach(function (t) { if (!t.checked) { hidden[t.getAttribute("data-backend-toggle")] = true; } });
    return hidden;
  }

  function applyRows() {
    var hidden = hiddenBackends();
    var terms = (filterBox ? filterBox.value : "").toLowerCase().split(/\s+/).filter(Boolean);
    var shown = 0;
    rows.forEach(function (row) {
      var text = row.textContent.toLowerCase();
      var ok = !hidden[row.getAttribute("data-backend")] &&
        terms.every(function (term) { return text.indexOf(term) !== -1; });
      row.hidden = !ok;
      if (ok) { shown += 1; }
    });
    if (count) { count.textContent = shown + " of " + rows.length + " samples"; }
  }

  function applyCharts() {
    var hidden = hiddenBackends();
    charts.forEach(function (gd) {
      var show = [], hide = [];
      (gd.data || []).forEach(function (trace, i) {
        var backend = trace.meta && trace.meta.backend;
        if (!backend) { return; }
        (hidden[backend] ? hide : show).push(i);
      });
      if (hide.length) { window.Plotly.restyle(gd, { visible: false }, hide); }
      if (show.length) {
        var restore = show.filter(function (i) { return gd.data[i].visible === false; });
        if (restore.length) { window.Plotly.restyle(gd, { visible: true }, restore); }
      }
    });
  }

  toggles.forEach(function (t) {
    t.addEventListener("change", function () { applyCharts(); applyRows(); });
  });
  if (filterBox) { filterBox.addEventListener("input", applyRows); }

  function sortValue(row, index, numeric) {
    var cell = row.cells[index];
    if (!numeric) { return cell.textContent.trim().toLowerCase(); }
    var v = parseFloat(cell.getAttribute("data-value"));
    return isNaN(v) ? -Infinity : v;
  }

  if (table) {
    var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
    headers.forEach(function (th, index) {
      if (!th.hasAttribute("data-sort")) { return; }
      th.tabIndex = 0;
      function sort() {
        var numeric = th.getAttribute("data-sort") === "number";
        var ascending = th.getAttribute("aria-sort") !== "ascending";
        headers.forEach(function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var keyed = rows.map(function (row, i) { return [sortValue(row, index, numeric), i, row]; });
        keyed.sort(function (a, b) {
          if (a[0] < b[0]) { return ascending ? -1 : 1; }
          if (a[0] > b[0]) { return ascending ? 1 : -1; }
          return a[1] - b[1];
        });
        var body = table.tBodies[0];
        keyed.forEach(function (k) { body.appendChild(k[2]); });
        rows = keyed.map(function (k) { return k[2]; });
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); }
      });
    });
  }
  applyRows();
})();
