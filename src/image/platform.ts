import { endianness } from "node:os";

import { ImageError } from "../errors.js";

/** OCI image-spec, image-index.md: the `platform` of a manifest in an index. */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** Node's `process.arch` to the GOARCH names OCI uses. */
const ARCHITECTURES: Record<string, string> = {
  x64: "amd64",
  arm64: "arm64",
  arm: "arm",
  ia32: "386",
  ppc64: endianness() === "LE" ? "ppc64le" : "ppc64",
  s390x: "s390x",
  riscv64: "riscv64",
  loong64: "loong64",
  mips64el: "mips64le",
};

/** Returns the platform of this process; images for microVMs are always `linux`. */
export function hostPlatform(): Platform {
  const architecture = ARCHITECTURES[process.arch] ?? process.arch;
  if (architecture !== "arm") return { os: "linux", architecture };
  const armVersion = (process.config.variables as { arm_version?: string }).arm_version;
  return armVersion === undefined ? { os: "linux", architecture } : { os: "linux", architecture, variant: `v${armVersion}` };
}

/** Parses `os/arch[/variant]`, such as `linux/arm64` or `linux/arm/v7`. */
export function parsePlatform(text: string): Platform {
  const parts = text.split("/");
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p === "")) {
    throw new ImageError("ERR_IMAGE_INVALID_PLATFORM", `Invalid platform "${text}"; expected os/arch or os/arch/variant, such as linux/arm64.`);
  }
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  return variant === undefined ? { os, architecture } : { os, architecture, variant };
}

export function formatPlatform(platform: Platform): string {
  const base = `${platform.os}/${platform.architecture}`;
  return platform.variant === undefined || platform.variant === "" ? base : `${base}/${platform.variant}`;
}

/**
 * Tells whether an index entry's platform satisfies the requested one. A
 * request without a variant accepts any variant. arm64 images often leave
 * out the variant, which then means `v8`.
 */
export function platformMatches(candidate: Platform, wanted: Platform): boolean {
  if (candidate.os !== wanted.os || candidate.architecture !== wanted.architecture) return false;
  if (wanted.variant === undefined) return true;
  return normalizedVariant(candidate) === normalizedVariant(wanted);
}

function normalizedVariant(platform: Platform): string | undefined {
  if (platform.architecture === "arm64" && (platform.variant === undefined || platform.variant === "")) return "v8";
  return platform.variant;
}
