// A small WebGL 2 point renderer for the Map view: every token a point (gl.POINTS, a colour
// each), a pan/zoom camera as one uniform, highlighted points drawn again on top, and line
// segments for a selected token's neighbours. Labels are drawn by the view on a 2-D canvas.
//
// Hand-written, not a library, for two reasons found when trying them: regl (under
// regl-scatterplot) compiles its draw commands with Function(...), which the page's
// Content-Security-Policy (script-src 'self', no 'unsafe-eval') refuses; and
// embedding-atlas's npm package cannot be installed (its dependency @uwdata/wk-geojson is
// missing from the registry). What the map needs of WebGL is small: the shaders below.
//
// Speed. Without a GPU (Chromium's SwiftShader draws on the CPU) 128k points take ~90 ms, too
// slow to follow a drag. So each full drawing is kept in a texture, and while the map moves
// (`drawMoving`) that picture is drawn moved and scaled, one quad (a few ms); the points are
// drawn again once the motion stops (the view schedules it), as map viewers do.
"use strict";

const POINT_VERTEX = `#version 300 es
in float a_x;
in float a_y;
in vec4 a_colour;
uniform vec2 u_centre;   // the data point at the middle of the canvas
uniform vec2 u_scale;    // clip units per data unit, x and y
uniform float u_size;    // point diameter, device pixels
uniform vec4 u_override; // used instead of a_colour when its alpha is above 0
uniform float u_dim;     // 0: the point's colour; 1: all but white
out vec4 v_colour;
void main() {
  gl_Position = vec4((vec2(a_x, a_y) - u_centre) * u_scale, 0.0, 1.0);
  gl_PointSize = u_size;
  vec4 colour = u_override.a > 0.0 ? u_override : a_colour;
  v_colour = vec4(mix(colour.rgb, vec3(1.0), u_dim), colour.a);
}`;

const POINT_FRAGMENT = `#version 300 es
precision mediump float;
in vec4 v_colour;
uniform float u_round; // 1: discs (gl.POINTS are squares); 0: squares and lines
out vec4 colour;
void main() {
  vec2 d = gl_PointCoord - 0.5;
  if (u_round > 0.5 && dot(d, d) > 0.25) discard;
  colour = v_colour;
}`;

// The kept picture, drawn where its data rectangle now falls.
const QUAD_VERTEX = `#version 300 es
in vec2 a_corner;       // (0, 0) to (1, 1)
uniform vec2 u_origin;  // clip position of the picture's bottom-left corner
uniform vec2 u_extent;  // its size in clip units
out vec2 v_uv;
void main() {
  v_uv = a_corner;
  gl_Position = vec4(u_origin + a_corner * u_extent, 0.0, 1.0);
}`;

const QUAD_FRAGMENT = `#version 300 es
precision mediump float;
in vec2 v_uv;
uniform sampler2D u_picture;
out vec4 colour;
void main() {
  colour = texture(u_picture, v_uv);
}`;

class PointMap {
  /** A renderer drawing into `canvas` (its CSS size is the map's size). Throws an Error with
   * a one-line message when the browser has no WebGL 2. */
  constructor(canvas) {
    const gl = canvas.getContext("webgl2", { antialias: false, preserveDrawingBuffer: true });
    if (!gl) throw new Error("this browser has no WebGL 2, which the map needs");
    this.canvas = canvas;
    this.gl = gl;
    this.program = link(gl, POINT_VERTEX, POINT_FRAGMENT);
    this.where = {};
    for (const name of ["u_centre", "u_scale", "u_size", "u_override", "u_dim", "u_round"]) {
      this.where[name] = gl.getUniformLocation(this.program, name);
    }
    this.attrib = {
      x: gl.getAttribLocation(this.program, "a_x"),
      y: gl.getAttribLocation(this.program, "a_y"),
      colour: gl.getAttribLocation(this.program, "a_colour"),
    };
    this.buffers = { x: gl.createBuffer(), y: gl.createBuffer(), colour: gl.createBuffer(),
      highlight: gl.createBuffer(), lineX: gl.createBuffer(), lineY: gl.createBuffer() };
    this.points = gl.createVertexArray();
    this.lines = gl.createVertexArray();
    this.count = 0;
    this.x = new Float32Array(0);
    this.y = new Float32Array(0);
    this.highlighted = 0;
    this.lineVertices = 0;
    this.dimmed = false;
    this.camera = { cx: 0, cy: 0, scale: 1 }; // scale: CSS pixels per data unit
    this.quad = link(gl, QUAD_VERTEX, QUAD_FRAGMENT);
    this.quadWhere = {
      origin: gl.getUniformLocation(this.quad, "u_origin"),
      extent: gl.getUniformLocation(this.quad, "u_extent"),
    };
    this.corners = gl.createVertexArray();
    gl.bindVertexArray(this.corners);
    this.upload(gl.createBuffer(), new Float32Array([0, 0, 1, 0, 0, 1, 1, 1]),
      gl.getAttribLocation(this.quad, "a_corner"), 2, gl.FLOAT, false);
    gl.bindVertexArray(null);
    this.picture = null; // { texture, framebuffer, width, height, camera } of the last drawing
  }

  /** The points' positions (data units; y up). */
  setPoints(x, y) {
    const gl = this.gl;
    this.x = x;
    this.y = y;
    this.count = x.length;
    gl.bindVertexArray(this.points);
    this.upload(this.buffers.x, x, this.attrib.x, 1, gl.FLOAT, false);
    this.upload(this.buffers.y, y, this.attrib.y, 1, gl.FLOAT, false);
    gl.bindVertexArray(null);
  }

  /** Each point's colour: 4 bytes (r, g, b, a) a point. */
  setColours(rgba) {
    const gl = this.gl;
    gl.bindVertexArray(this.points);
    this.upload(this.buffers.colour, rgba, this.attrib.colour, 4, gl.UNSIGNED_BYTE, true);
    gl.bindVertexArray(null);
  }

  /** Points drawn again, larger, on top (indices into the points); `dim` pales the rest. */
  setHighlight(indices, dim) {
    const gl = this.gl;
    gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, this.buffers.highlight);
    gl.bufferData(gl.ELEMENT_ARRAY_BUFFER, new Uint32Array(indices), gl.DYNAMIC_DRAW);
    this.highlighted = indices.length;
    this.dimmed = dim;
  }

  /** Line segments from point `from` to each of `to` (indices into the points). */
  setLines(from, to) {
    const gl = this.gl;
    const xs = new Float32Array(2 * to.length);
    const ys = new Float32Array(2 * to.length);
    to.forEach((j, n) => {
      xs[2 * n] = this.x[from];
      ys[2 * n] = this.y[from];
      xs[2 * n + 1] = this.x[j];
      ys[2 * n + 1] = this.y[j];
    });
    gl.bindVertexArray(this.lines);
    this.upload(this.buffers.lineX, xs, this.attrib.x, 1, gl.FLOAT, false);
    this.upload(this.buffers.lineY, ys, this.attrib.y, 1, gl.FLOAT, false);
    gl.bindVertexArray(null);
    this.lineVertices = xs.length;
  }

  upload(buffer, data, location, size, type, normalized) {
    const gl = this.gl;
    gl.bindBuffer(gl.ARRAY_BUFFER, buffer);
    gl.bufferData(gl.ARRAY_BUFFER, data, gl.STATIC_DRAW);
    if (location < 0) return;
    gl.enableVertexAttribArray(location);
    gl.vertexAttribPointer(location, size, type, normalized, 0, 0);
  }

  /** Match the drawing buffer to the canvas's CSS size; true when it changed. */
  resize() {
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(1, Math.round(this.canvas.clientWidth * ratio));
    const height = Math.max(1, Math.round(this.canvas.clientHeight * ratio));
    if (this.canvas.width === width && this.canvas.height === height) return false;
    this.canvas.width = width;
    this.canvas.height = height;
    return true;
  }

  /** Draw everything under the current camera, and keep the picture for `drawMoving`. */
  draw() {
    const gl = this.gl;
    const picture = this.keptPicture();
    gl.bindFramebuffer(gl.FRAMEBUFFER, picture.framebuffer);
    this.drawPoints();
    gl.bindFramebuffer(gl.FRAMEBUFFER, null);
    gl.bindFramebuffer(gl.READ_FRAMEBUFFER, picture.framebuffer);
    const { width, height } = this.canvas;
    gl.blitFramebuffer(0, 0, width, height, 0, 0, width, height, gl.COLOR_BUFFER_BIT, gl.NEAREST);
    gl.bindFramebuffer(gl.READ_FRAMEBUFFER, null);
    picture.camera = { ...this.camera, width: this.canvas.clientWidth,
      height: this.canvas.clientHeight };
  }

  /** The last drawing, moved and scaled to the current camera (white where it has no
   * points yet); `draw` once the motion stops. */
  drawMoving() {
    const picture = this.picture;
    if (!picture || !picture.camera || picture.width !== this.canvas.width
      || picture.height !== this.canvas.height) {
      this.draw();
      return;
    }
    const gl = this.gl;
    const then = picture.camera;
    const { cx, cy, scale } = this.camera;
    const w = this.canvas.clientWidth;
    const h = this.canvas.clientHeight;
    // The data rectangle the picture shows, in today's clip coordinates.
    const left = then.cx - then.width / (2 * then.scale);
    const bottom = then.cy - then.height / (2 * then.scale);
    gl.viewport(0, 0, this.canvas.width, this.canvas.height);
    gl.clearColor(1, 1, 1, 1);
    gl.clear(gl.COLOR_BUFFER_BIT);
    gl.useProgram(this.quad);
    gl.uniform2f(this.quadWhere.origin, ((left - cx) * 2 * scale) / w,
      ((bottom - cy) * 2 * scale) / h);
    gl.uniform2f(this.quadWhere.extent, (2 * then.width * scale) / (then.scale * w),
      (2 * then.height * scale) / (then.scale * h));
    gl.bindTexture(gl.TEXTURE_2D, picture.texture);
    gl.bindVertexArray(this.corners);
    gl.drawArrays(gl.TRIANGLE_STRIP, 0, 4);
    gl.bindVertexArray(null);
  }

  /** A texture and framebuffer the canvas's size, made again when the canvas changes. */
  keptPicture() {
    const gl = this.gl;
    const { width, height } = this.canvas;
    if (this.picture && this.picture.width === width && this.picture.height === height) {
      return this.picture;
    }
    if (this.picture) {
      gl.deleteTexture(this.picture.texture);
      gl.deleteFramebuffer(this.picture.framebuffer);
    }
    const texture = gl.createTexture();
    gl.bindTexture(gl.TEXTURE_2D, texture);
    gl.texStorage2D(gl.TEXTURE_2D, 1, gl.RGBA8, width, height);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.LINEAR);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.LINEAR);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE);
    const framebuffer = gl.createFramebuffer();
    gl.bindFramebuffer(gl.FRAMEBUFFER, framebuffer);
    gl.framebufferTexture2D(gl.FRAMEBUFFER, gl.COLOR_ATTACHMENT0, gl.TEXTURE_2D, texture, 0);
    gl.bindFramebuffer(gl.FRAMEBUFFER, null);
    this.picture = { texture, framebuffer, width, height, camera: null };
    return this.picture;
  }

  /** The points, lines and highlights under the current camera, into the bound framebuffer. */
  drawPoints() {
    const gl = this.gl;
    const ratio = window.devicePixelRatio || 1;
    const { cx, cy, scale } = this.camera;
    gl.viewport(0, 0, this.canvas.width, this.canvas.height);
    gl.clearColor(1, 1, 1, 1);
    gl.clear(gl.COLOR_BUFFER_BIT);
    gl.useProgram(this.program);
    const w = this.where;
    gl.uniform2f(w.u_centre, cx, cy);
    gl.uniform2f(w.u_scale, (2 * scale * ratio) / this.canvas.width,
      (2 * scale * ratio) / this.canvas.height);
    // Points grow a little as one zooms in, so a dense map stays legible and a sparse one full.
    const base = Math.min(9, Math.max(2, 1.5 + Math.log2(1 + scale / this.fitScale()))) * ratio;
    gl.uniform4f(w.u_override, 0, 0, 0, 0);
    gl.uniform1f(w.u_round, 1);
    gl.bindVertexArray(this.points);
    gl.uniform1f(w.u_dim, this.dimmed ? 0.8 : 0);
    gl.uniform1f(w.u_size, base);
    gl.drawArrays(gl.POINTS, 0, this.count);
    if (this.lineVertices) {
      gl.bindVertexArray(this.lines);
      gl.uniform1f(w.u_round, 0);
      gl.uniform1f(w.u_dim, 0);
      gl.uniform4f(w.u_override, 0.1, 0.1, 0.1, 1);
      gl.drawArrays(gl.LINES, 0, this.lineVertices);
      gl.uniform4f(w.u_override, 0, 0, 0, 0);
      gl.uniform1f(w.u_round, 1);
      gl.bindVertexArray(this.points);
    }
    if (this.highlighted) {
      gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, this.buffers.highlight);
      gl.uniform1f(w.u_dim, 0);
      gl.uniform1f(w.u_size, base + 3 * ratio); // a dark ring: a larger dark disc under it
      gl.uniform4f(w.u_override, 0.1, 0.1, 0.1, 1);
      gl.drawElements(gl.POINTS, this.highlighted, gl.UNSIGNED_INT, 0);
      gl.uniform4f(w.u_override, 0, 0, 0, 0);
      gl.uniform1f(w.u_size, base + 1 * ratio);
      gl.drawElements(gl.POINTS, this.highlighted, gl.UNSIGNED_INT, 0);
    }
    gl.bindVertexArray(null);
  }

  /** Wait until the GPU has drawn (reading a pixel back), for timings. */
  finish() {
    const pixel = new Uint8Array(4);
    this.gl.readPixels(0, 0, 1, 1, this.gl.RGBA, this.gl.UNSIGNED_BYTE, pixel);
  }

  // --- the camera --------------------------------------------------------------------------

  /** The scale (CSS pixels per data unit) at which `bounds` fills the canvas. */
  fitScale(bounds = this.bounds) {
    if (!bounds) return 1;
    const w = this.canvas.clientWidth || 1;
    const h = this.canvas.clientHeight || 1;
    const dx = bounds.x[1] - bounds.x[0] || 1;
    const dy = bounds.y[1] - bounds.y[0] || 1;
    return 0.92 * Math.min(w / dx, h / dy);
  }

  /** Canvas CSS pixel (left, top) of a data point. */
  toScreen(x, y) {
    const { cx, cy, scale } = this.camera;
    return [this.canvas.clientWidth / 2 + (x - cx) * scale,
      this.canvas.clientHeight / 2 - (y - cy) * scale];
  }

  /** The data point at canvas CSS pixel (left, top). */
  toData(left, top) {
    const { cx, cy, scale } = this.camera;
    return [cx + (left - this.canvas.clientWidth / 2) / scale,
      cy - (top - this.canvas.clientHeight / 2) / scale];
  }

  /** Zoom by `factor` keeping the data point under (left, top) in place. */
  zoomAt(left, top, factor) {
    const [x, y] = this.toData(left, top);
    const scale = Math.min(Math.max(this.camera.scale * factor, this.fitScale() / 4),
      this.fitScale() * 5000);
    this.camera = { cx: x - (left - this.canvas.clientWidth / 2) / scale,
      cy: y + (top - this.canvas.clientHeight / 2) / scale, scale };
  }

  panBy(dx, dy) {
    const { cx, cy, scale } = this.camera;
    this.camera = { cx: cx - dx / scale, cy: cy + dy / scale, scale };
  }

  /** The point nearest canvas CSS pixel (left, top) within `radius` pixels, or -1. A scan of
   * every point: 128k points take about a millisecond, less than a frame. */
  nearest(left, top, radius) {
    const [x, y] = this.toData(left, top);
    const limit = (radius / this.camera.scale) ** 2;
    let best = -1;
    let bestDistance = limit;
    const xs = this.x;
    const ys = this.y;
    for (let i = 0; i < this.count; i += 1) {
      const dx = xs[i] - x;
      const dy = ys[i] - y;
      const d = dx * dx + dy * dy;
      if (d <= bestDistance) {
        bestDistance = d;
        best = i;
      }
    }
    return best;
  }
}

function link(gl, vertexSource, fragmentSource) {
  const program = gl.createProgram();
  for (const [type, source] of [[gl.VERTEX_SHADER, vertexSource],
    [gl.FRAGMENT_SHADER, fragmentSource]]) {
    const shader = gl.createShader(type);
    gl.shaderSource(shader, source);
    gl.compileShader(shader);
    if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) {
      throw new Error(`the map's shader did not compile: ${gl.getShaderInfoLog(shader)}`);
    }
    gl.attachShader(program, shader);
  }
  gl.linkProgram(program);
  if (!gl.getProgramParameter(program, gl.LINK_STATUS)) {
    throw new Error(`the map's shaders did not link: ${gl.getProgramInfoLog(program)}`);
  }
  return program;
}
