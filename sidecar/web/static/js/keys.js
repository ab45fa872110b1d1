// Camelot wheel helpers (the same rule as sidecar.domain.KeySignature.compatible_camelot).

const MINOR = ["A♭m", "E♭m", "B♭m", "Fm", "Cm", "Gm", "Dm", "Am", "Em", "Bm", "F♯m", "D♭m"];
const MAJOR = ["B", "F♯", "D♭", "A♭", "E♭", "B♭", "F", "C", "G", "D", "A", "E"];

/** "8A" -> "Am" (short key name of a Camelot code). */
export function keyName(camelot) {
  const match = /^(1[0-2]|[1-9])([AB])$/.exec(camelot || "");
  if (!match) return "";
  const index = Number(match[1]) - 1;
  return match[2] === "A" ? MINOR[index] : MAJOR[index];
}

/** Harmonic-mixing neighbours: itself, one hour either way, and the relative key. */
export function compatible(camelot) {
  const match = /^(1[0-2]|[1-9])([AB])$/.exec(camelot || "");
  if (!match) return [];
  const number = Number(match[1]);
  const letter = match[2];
  const other = letter === "A" ? "B" : "A";
  const down = ((number + 10) % 12) + 1;
  const up = (number % 12) + 1;
  return [`${number}${letter}`, `${down}${letter}`, `${up}${letter}`, `${number}${other}`];
}

export const ALL_CAMELOT = Array.from({ length: 12 }, (_, i) => [`${i + 1}A`, `${i + 1}B`]).flat();
