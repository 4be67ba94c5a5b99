/**
 * Platforms as the OCI image index names them (`os`, `architecture`,
 * `variant`), written `os/arch[/variant]` like Docker's `--platform`.
 */

import { RegistryError } from "../errors.js";

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** Node's `process.arch` values mapped to the GOARCH names that OCI indexes use. */
const NODE_TO_OCI_ARCH: Record<string, string> = {
  x64: "amd64",
  arm64: "arm64",
  arm: "arm",
  ia32: "386",
  ppc64: "ppc64le",
  s390x: "s390x",
  riscv64: "riscv64",
  loong64: "loong64",
  mips: "mips",
  mipsel: "mipsle",
};

/** Parses `os/arch[/variant]`, such as `linux/arm64` or `linux/arm/v7`. */
export function parsePlatform(text: string): Platform {
  const parts = text.split("/");
  if (parts.length < 2 || parts.length > 3 || parts.some((part) => !/^[a-z0-9._-]+$/.test(part))) {
    throw new RegistryError("ERR_PLATFORM_INVALID", `invalid platform "${text}": expected os/architecture[/variant], such as linux/arm64`);
  }
  const platform: Platform = { os: parts[0]!, architecture: parts[1]! };
  if (parts[2] !== undefined) platform.variant = parts[2];
  return platform;
}

export function formatPlatform(platform: Platform): string {
  return [platform.os, platform.architecture, platform.variant].filter(Boolean).join("/");
}

/**
 * Returns the platform of images this host runs by default: Linux (the
 * guest is a Linux microVM whatever the host OS) on the host's architecture,
 * with the ARM variant Node was built for on 32-bit ARM.
 */
export function hostPlatform(): Platform {
  const architecture = NODE_TO_OCI_ARCH[process.arch] ?? process.arch;
  const platform: Platform = { os: "linux", architecture };
  if (architecture === "arm") {
    const armVersion = (process.config.variables as Record<string, unknown>).arm_version;
    platform.variant = `v${typeof armVersion === "string" || typeof armVersion === "number" ? armVersion : 7}`;
  }
  return platform;
}

/** Returns the variant of a platform, counting arm64 without a variant as arm64/v8 so that `linux/arm64/v8` matches it. */
function effectiveVariant(platform: Platform): string | undefined {
  if (platform.variant !== undefined) return platform.variant;
  if (platform.architecture === "arm64") return "v8";
  return undefined;
}

/** Tells whether an index entry's platform satisfies the requested one. A request without a variant accepts any variant. */
export function platformMatches(requested: Platform, candidate: Platform): boolean {
  if (requested.os !== candidate.os || requested.architecture !== candidate.architecture) return false;
  if (requested.variant === undefined) return true;
  return effectiveVariant(requested) === effectiveVariant(candidate);
}
