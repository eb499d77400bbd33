// The baked view-dependent MLP of part 1 (mlp.json, format paperloom-video2game-mlp/1), in two forms that compute
// the same function as bake.mlp_numpy: a plain JavaScript forward (tests compare it with numpy) and GLSL source with
// the weights as constants, evaluated per fragment (MobileNeRF / Video2Game style).

export const MLP_FORMAT = 'paperloom-video2game-mlp/1';

export function checkMlp(mlp) {
  if (!mlp || mlp.format !== MLP_FORMAT) throw new Error(`mlp.json: format ${mlp && mlp.format}, expected ${MLP_FORMAT}`);
  return mlp.layers[0].weight[0].length - 3; // specular feature channels
}

// x: array of inputs [spec_0..spec_{C-1}, dir.x, dir.y, dir.z] -> y (3): the rgb offset.
export function mlpForward(mlp, x) {
  let h = Array.from(x);
  for (const layer of mlp.layers) {
    const out = new Array(layer.bias.length);
    for (let o = 0; o < out.length; o++) {
      const w = layer.weight[o];
      let s = layer.bias[o];
      for (let i = 0; i < h.length; i++) s += w[i] * h[i];
      out[o] = layer.activation === 'relu' ? Math.max(s, 0) : s;
    }
    h = out;
  }
  return h;
}

// rgb = clamp(diffuse + mlp([spec, dir]), 0, 1)
export function shade(mlp, diffuse, spec, dir) {
  const y = mlpForward(mlp, [...spec, ...dir]);
  return y.map((v, k) => Math.min(Math.max(diffuse[k] + v, 0), 1));
}

const lit = (v) => {
  const s = Number(v).toExponential(8);
  return s;
};

// GLSL: `vec3 mlp(vec4 spec, vec3 dir)`; vectors are vec4 blocks, weights mat4 constants (column-major: a block's
// column c holds inputs 4j + c of rows 4k .. 4k + 3).
export function mlpGLSL(mlp) {
  const c = checkMlp(mlp);
  const inputs = ['spec.x', 'spec.y', 'spec.z', 'spec.w'].slice(0, c).concat(['dir.x', 'dir.y', 'dir.z']);
  const blocks = (n) => Math.ceil(n / 4);
  const lines = ['vec3 mlp(vec4 spec, vec3 dir) {'];
  const nIn = blocks(inputs.length);
  for (let j = 0; j < nIn; j++) {
    const e = [0, 1, 2, 3].map((q) => inputs[4 * j + q] || '0.0');
    lines.push(`  vec4 h0_${j} = vec4(${e.join(', ')});`);
  }
  let prevBlocks = nIn;
  mlp.layers.forEach((layer, k) => {
    const rows = layer.bias.length;
    const cols = layer.weight[0].length;
    const nOut = blocks(rows);
    for (let b = 0; b < nOut; b++) {
      const bias = [0, 1, 2, 3].map((r) => (4 * b + r < rows ? lit(layer.bias[4 * b + r]) : '0.0'));
      const terms = [`vec4(${bias.join(', ')})`];
      for (let j = 0; j < prevBlocks; j++) {
        const m = [];
        for (let cc = 0; cc < 4; cc++) {
          for (let r = 0; r < 4; r++) {
            const row = 4 * b + r;
            const col = 4 * j + cc;
            m.push(row < rows && col < cols ? lit(layer.weight[row][col]) : '0.0');
          }
        }
        terms.push(`mat4(${m.join(', ')}) * h${k}_${j}`);
      }
      const sum = terms.join('\n      + ');
      const act = layer.activation === 'relu' ? `max(${sum}, vec4(0.0))` : sum;
      lines.push(`  vec4 h${k + 1}_${b} = ${act};`);
    }
    prevBlocks = nOut;
  });
  lines.push(`  return h${mlp.layers.length}_0.xyz;`, '}');
  return lines.join('\n');
}
