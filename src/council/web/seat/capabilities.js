// What this browser can do: the facts the decision (decide.js) is made from.

function hasMemory64() {
  try {
    new WebAssembly.Memory({ address: "i64", initial: 1n });
    return true;
  } catch {
    return false;
  }
}

async function webgpu() {
  if (!navigator.gpu) return { adapter: false, shaderF16: false };
  try {
    const adapter = await navigator.gpu.requestAdapter();
    return { adapter: Boolean(adapter), shaderF16: Boolean(adapter?.features.has("shader-f16")) };
  } catch {
    return { adapter: false, shaderF16: false };
  }
}

async function storage() {
  try {
    const { quota = 0, usage = 0 } = await navigator.storage.estimate();
    return { quota, free: Math.max(0, quota - usage) };
  } catch {
    return { quota: 0, free: 0 };
  }
}

export async function detect() {
  const gpu = await webgpu();
  const { quota, free } = await storage();
  const jspi = typeof WebAssembly.Suspending === "function";
  const memory64 = hasMemory64();
  return {
    secure: window.isSecureContext,
    isolated: window.crossOriginIsolated === true,
    webgpu: gpu.adapter,
    shaderF16: gpu.shaderF16,
    jspi,
    memory64,
    compat: !(jspi && memory64),
    deviceMemoryGb: navigator.deviceMemory ?? null, // Chromium only, rounded and capped at 8
    cores: navigator.hardwareConcurrency || 1,
    quota,
    free,
  };
}
