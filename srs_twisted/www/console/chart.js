// A tiny line chart on a canvas: the last `span` seconds of one or more named series,
// newest on the right. Used by the console (bitrate) and the latency meter.
(function () {
  "use strict";
  var COLORS = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#0a7ea4"];

  function Chart(canvas, span, unit) {
    this.canvas = canvas;
    this.span = span || 300;
    this.unit = unit || "kbps";
    this.series = {}; // name -> [[seconds, value], ...]
    this.order = [];
  }

  Chart.prototype.add = function (t, value, name) {
    name = name || "";
    if (!this.series[name]) {
      this.series[name] = [];
      this.order.push(name);
    }
    var points = this.series[name];
    points.push([t, value]);
    while (points.length && points[0][0] < t - this.span) points.shift();
    this.draw();
  };

  Chart.prototype.draw = function () {
    var c = this.canvas;
    var g = c.getContext("2d");
    var w = c.width, h = c.height, pad = 2;
    g.clearRect(0, 0, w, h);
    var all = [];
    var self = this;
    this.order.forEach(function (name) { all = all.concat(self.series[name]); });
    if (!all.length) return;
    var now = -Infinity, first = Infinity, max = 1;
    all.forEach(function (p) {
      now = Math.max(now, p[0]);
      first = Math.min(first, p[0]);
      max = Math.max(max, p[1]);
    });
    // The window grows from one minute to `span` as the history does.
    var shown = Math.min(this.span, Math.max(60, now - first));
    var x = function (t) { return w - pad - (now - t) / shown * (w - 2 * pad); };
    var y = function (v) { return h - pad - v / max * (h - 14 - pad); };
    g.lineWidth = 1.5;
    this.order.forEach(function (name, i) {
      var points = self.series[name];
      if (!points.length) return;
      g.strokeStyle = COLORS[i % COLORS.length];
      g.beginPath();
      points.forEach(function (p, j) { (j ? g.lineTo : g.moveTo).call(g, x(p[0]), y(p[1])); });
      g.stroke();
      if (self.order.length === 1) { // one series: fill under it
        g.fillStyle = "rgba(31, 111, 235, 0.12)";
        g.lineTo(x(points[points.length - 1][0]), h - pad);
        g.lineTo(x(points[0][0]), h - pad);
        g.closePath();
        g.fill();
      }
    });
    g.font = "10px sans-serif";
    g.fillStyle = "#667085";
    var label = "max " + Math.round(max) + " " + this.unit + ", " + Math.round(shown / 60) + " min";
    g.fillText(label, 4, 10);
    var left = 8 + g.measureText(label).width;
    this.order.forEach(function (name, i) {
      if (!name) return;
      g.fillStyle = COLORS[i % COLORS.length];
      g.fillText(name, left, 10);
      left += g.measureText(name).width + 8;
    });
  };

  window.SrsChart = Chart;
})();
