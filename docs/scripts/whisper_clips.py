"""Spoken test clips for docs/whisper.md: the same 12 sentences in English, German, French and Spanish, spoken by
espeak-ng into four audio folders whose manifests hold the transcript (text), the language and the English
translation (english).

    python docs/scripts/whisper_clips.py ../shared/models/real-whisper/make_clips.sh clips/
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

EN = ["The house is small and the garden is green.", "She reads a book every evening before dinner.",
      "The train leaves the station at seven o'clock.", "My brother plays the guitar in a small band.",
      "It is raining, so we will stay at home today.", "The children are playing football in the park.",
      "Please close the window when you leave the room.", "We bought fresh bread and cheese at the market.",
      "The doctor said that I should sleep more.", "Our neighbours have a black cat and two dogs.",
      "The museum is closed on Mondays.", "I would like a cup of coffee with milk, please."]
DE = ["Das Haus ist klein und der Garten ist grün.", "Sie liest jeden Abend vor dem Essen ein Buch.",
      "Der Zug verlässt den Bahnhof um sieben Uhr.", "Mein Bruder spielt Gitarre in einer kleinen Band.",
      "Es regnet, also bleiben wir heute zu Hause.", "Die Kinder spielen im Park Fußball.",
      "Bitte schließ das Fenster, wenn du das Zimmer verlässt.",
      "Wir haben auf dem Markt frisches Brot und Käse gekauft.",
      "Der Arzt hat gesagt, dass ich mehr schlafen soll.", "Unsere Nachbarn haben eine schwarze Katze und zwei Hunde.",
      "Das Museum ist montags geschlossen.", "Ich hätte gern eine Tasse Kaffee mit Milch, bitte."]
FR = ["La maison est petite et le jardin est vert.", "Elle lit un livre chaque soir avant le dîner.",
      "Le train quitte la gare à sept heures.", "Mon frère joue de la guitare dans un petit groupe.",
      "Il pleut, donc nous restons à la maison aujourd'hui.", "Les enfants jouent au football dans le parc.",
      "Ferme la fenêtre quand tu quittes la pièce, s'il te plaît.",
      "Nous avons acheté du pain frais et du fromage au marché.",
      "Le médecin a dit que je devrais dormir plus.", "Nos voisins ont un chat noir et deux chiens.",
      "Le musée est fermé le lundi.", "Je voudrais une tasse de café au lait, s'il vous plaît."]
ES = ["La casa es pequeña y el jardín es verde.", "Ella lee un libro cada noche antes de cenar.",
      "El tren sale de la estación a las siete.", "Mi hermano toca la guitarra en una banda pequeña.",
      "Está lloviendo, así que hoy nos quedamos en casa.", "Los niños juegan al fútbol en el parque.",
      "Por favor, cierra la ventana cuando salgas de la habitación.", "Compramos pan fresco y queso en el mercado.",
      "El médico dijo que debería dormir más.", "Nuestros vecinos tienen un gato negro y dos perros.",
      "El museo está cerrado los lunes.", "Quisiera una taza de café con leche, por favor."]


def main(make_clips: str, out: Path) -> None:
    for code, sentences in (("en", EN), ("de", DE), ("fr", FR), ("es", ES)):
        lines = out / f"{code}.tsv"
        out.mkdir(parents=True, exist_ok=True)
        lines.write_text("".join(f"{code}\t{s}\n" for s in sentences), encoding="utf-8")
        subprocess.run(["bash", make_clips, str(lines), str(out / code)], check=True)
        manifest = out / code / "metadata.jsonl"
        rows = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines()]
        for row, english in zip(rows, EN, strict=True):
            row["english"] = english
        manifest.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
