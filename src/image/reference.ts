import { existsSync } from "node:fs";

import { ImageError } from "../errors.js";

export type SourceKind = "oci-layout" | "oci-archive" | "docker-archive";

/** A parsed image reference: where the image is and which one to take. */
export interface ImageReference {
  /** The transport; `undefined` for a bare path, whose kind is detected from its content. */
  kind: SourceKind | undefined;
  path: string;
  tag?: string;
  digest?: string;
  /** For docker-archive: the image to take by its `RepoTags` name, such as `busybox:latest`. */
  imageName?: string;
}

const TRANSPORTS: readonly SourceKind[] = ["oci-layout", "oci-archive", "docker-archive"];
/** OCI distribution-spec tag grammar. */
const TAG_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const DIGEST_SUFFIX = /@(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

/**
 * Parses `oci-layout:PATH[:TAG|@DIGEST]`, `oci-archive:PATH[:TAG|@DIGEST]`,
 * `docker-archive:PATH[:NAME[:TAG]]` or a bare `PATH[:TAG|@DIGEST]`.
 *
 * A path may contain colons, so `:TAG` is split off only when the whole
 * text names nothing on disk, the part before the last colon does, and
 * the part after it is a valid tag. For docker-archive, the path is the
 * shortest prefix before a colon that names a file, and the rest is the
 * image name.
 */
export function parseReference(text: string): ImageReference {
  const colon = text.indexOf(":");
  const prefix = colon === -1 ? "" : text.slice(0, colon);
  const kind = TRANSPORTS.find((t) => t === prefix);
  const rest = kind === undefined ? text : text.slice(colon + 1);
  if (rest === "") throw new ImageError("ERR_IMAGE_INVALID_REFERENCE", `Invalid image reference "${text}": the path is empty.`);

  const digestMatch = DIGEST_SUFFIX.exec(rest);
  if (digestMatch !== null) {
    return { kind, path: rest.slice(0, digestMatch.index), digest: digestMatch[1] as string };
  }
  if (existsSync(rest)) return { kind, path: rest };
  if (kind === "docker-archive") return splitImageName(rest);

  const last = rest.lastIndexOf(":");
  const tag = last === -1 ? "" : rest.slice(last + 1);
  if (last > 0 && TAG_PATTERN.test(tag) && existsSync(rest.slice(0, last))) {
    return { kind, path: rest.slice(0, last), tag };
  }
  return { kind, path: rest };
}

function splitImageName(rest: string): ImageReference {
  for (let colon = rest.indexOf(":"); colon > 0; colon = rest.indexOf(":", colon + 1)) {
    const path = rest.slice(0, colon);
    const imageName = rest.slice(colon + 1);
    if (imageName !== "" && existsSync(path)) return { kind: "docker-archive", path, imageName };
  }
  return { kind: "docker-archive", path: rest };
}

