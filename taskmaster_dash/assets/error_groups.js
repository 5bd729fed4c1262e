/* Cell renderers of the triage grid (pages/_error_triage.py): a group's status with its
   "Regressed" / "Escalating" badges, and its hourly occurrences as a small SVG sparkline.
   Everything is built with React.createElement from the row's values, so text stays text. */
(function () {
  "use strict";
  const cells = (window.dashAgGridComponentFunctions = window.dashAgGridComponentFunctions || {});
  const h = (...args) => window.React.createElement(...args);
  const WIDTH = 110;
  const HEIGHT = 24;

  cells.ErrorGroupStatus = function (props) {
    const data = props.data || {};
    const badges = [];
    if (data.regressed) {
      badges.push(h("span", {key: "r", className: "badge badge-regressed",
        title: "Resolved, then it happened again"}, "Regressed"));
    }
    if (data.escalating) {
      badges.push(h("span", {key: "e", className: "badge badge-escalating",
        title: "Its hourly rate is far above its own recent baseline"}, "Escalating"));
    }
    return h("span", {className: "group-status"},
      h("span", {className: "group-status-text"}, String(props.value == null ? "" : props.value)),
      ...badges);
  };

  cells.OccurrenceSparkline = function (props) {
    const counts = Array.isArray(props.value)
      ? props.value.map(n => (Number.isFinite(Number(n)) ? Math.max(0, Number(n)) : 0)) : [];
    if (counts.length === 0) { return null; }
    const most = Math.max(1, ...counts);
    const step = counts.length > 1 ? WIDTH / (counts.length - 1) : 0;
    const y = n => (HEIGHT - 2 - (n / most) * (HEIGHT - 4)).toFixed(1);
    const points = counts.map((n, i) => `${(i * step).toFixed(1)},${y(n)}`).join(" ");
    const total = counts.reduce((a, b) => a + b, 0);
    const span = counts.length <= 24 ? "24 hours" : `${Math.round(counts.length / 24)} days`;
    return h("svg", {
      className: "sparkline", width: WIDTH, height: HEIGHT,
      viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img",
      "aria-label": `${total} occurrences in the last ${span}`,
      "data-total": total,
    },
      h("title", null, `${total} occurrences in the last ${span} (most in one hour: ${most})`),
      h("polyline", {points: points, fill: "none", stroke: "currentColor", strokeWidth: 1.5}));
  };
})();
