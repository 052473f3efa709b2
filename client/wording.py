"""Why something did not happen, and which check failed, in people's words: English and Spanish.

The client core says these things for logs and ``--json`` in its own terms
(a ``WarningKind``, the relay's error code, an English reason such as
``not sent: bob's identity key changed …``). Both views turn them into
sentences here, the window (``gui/strings.py`` merges these tables into its
own) and the terminal (``render.py``, in English): never an internal code, a
raw message id, a doubled "not sent:", or English inside the Spanish window.
Pure: no Tk, no I/O.
"""

from __future__ import annotations

import re

from susurro.protocol import ErrorCode

from .events import EndCode, Ending

EN: dict[str, str] = {
    "not_in_room": "{name} is not in the room.",
    "reason_key_changed": "{name}'s key changed; accept it or verify first",
    "reason_disconnected": "not connected to the relay",
    "reason_refused": "nothing answers there (is the relay running?)",
    "reason_timeout": "no answer",
    "reason_shutdown": "the relay was stopped or is restarting",
    "reason_lost": "the connection to the relay was lost",
    "reason_closed": "you closed the connection",
    "reason_alone": "nobody else is in the room",
    "reason_name_taken": "someone else is using your name on this relay",
    "reason_identity_in_use": "another session of your identity key is connected to this relay "
    "(another device or window); one at a time",
    "reason_cluster_down": "the relay cannot reach the store it shares with the other relays of its cluster, "
    "so it lets nobody join right now",
    "reason_tls_needed": "the relay speaks TLS; start with --tls",
    "reason_not_tls": "the relay does not speak TLS; start without --tls",
    "reason_tls_untrusted": "the relay's certificate is not trusted; give its CA with --cafile FILE",
    "reason_other": "{detail}",
    "warn_decrypt_failed": "A message{from_sender} could not be decrypted: it was altered on the way or sealed for "
    "someone else. It is not shown.",
    "warn_bad_signature": "A message{from_sender} has a signature that does not match: it may be forged. "
    "It is not shown.",
    "warn_sender_mismatch": "A message claims to come from someone other than who sent it. It is not shown.",
    "warn_not_addressed_to_me": "The relay handed you a message{from_sender} that was not addressed to you. "
    "It is not shown.",
    "warn_replay": "A message{from_sender} arrived a second time (a replay). The copy is not shown.",
    "warn_gap": "Some messages{from_sender} never arrived: the relay dropped them or they were lost.",
    "warn_malformed_message": "A message{from_sender} is damaged and cannot be read. It is not shown.",
    "warn_recipient_key_mismatch": "A message{from_sender} was encrypted to keys that are not the ones you hold. "
    "It is not shown.",
    "warn_unknown_sender": "A message came from someone who is not in the room. It is not shown.",
    "warn_stale_session": "The relay presented an old session of {sender_or_someone}. It is ignored.",
    "warn_stale_certificate": "The relay presented an out-of-date key certificate for {sender_or_someone}. "
    "It is ignored.",
    "warn_impersonation": "The relay listed someone with another member's (or your) key. They are ignored.",
    "warn_duplicate_name": "The relay listed the same name twice or a lookalike name. It is ignored.",
    "warn_bad_name": "The relay listed a member with a name that breaks the rules. They are ignored.",
    "warn_bad_certificate": "A member's key certificate does not verify. They are ignored.",
    "warn_bad_public_key": "A member's key is not a valid key. They are ignored.",
    "warn_roster_full": "The room lists more members than this client accepts; some are not shown.",
    "warn_protocol_error": "The relay sent something this client does not understand.",
    "warn_relay_error": "The relay reported an error.",
    "warn_delivery_unknown": "The relay did not confirm one of your messages; it may not have arrived.",
    "warn_dropped": "The relay lost some of your messages before they arrived; they are sent again.",
    "warn_unconfirmed": "One of your messages is not confirmed yet; it is kept and sent again next time.",
    "warn_not_sent": "One of your messages could not be sent.",
    "warn_trust_store": "Your list of known keys could not be saved.",
    "warn_saved_entry_unreadable": (
        "Something saved from your last session (a room, an invitation or a room still to check) could not be"
        " read and was left out; everything else was kept."
    ),
    "warn_saved_state_unreadable": (
        "What was saved from your last session could not be opened, so Susurro started afresh: the rooms it"
        " remembered, pending invitations, rooms still to check and messages not yet confirmed are gone, and"
        " your contacts may see your messages counted from the start again. Join your rooms again; the damaged"
        " file was kept beside the new one (its name ends in .unreadable) if you want to recover or report it."
    ),
    "warn_internal_error": "Something went wrong inside Susurro; the connection starts over.",
    "warn_message_too_large": "A message{from_sender} is larger than this client accepts. It is not shown.",
    "warn_crypto_error": "A message{from_sender} failed a cryptographic check. It is not shown.",
    "warn_key_changed": "The identity key of {sender_or_someone} changed; nothing is sent to them until you accept it.",
    "warn_message_held": "You are offline: the line will be sent when the room is back.",
    "warn_bad_prekey": "A key {sender_or_someone} published for offline messages does not verify. It is not used.",
    "warn_prekey_exhausted": "{sender_or_someone} has no keys left for offline messages; try again later.",
    "warn_prekey_reused": "The relay handed out a one-time key of {sender_or_someone} twice. It is not used.",
    "warn_unknown_prekey": "A message{from_sender} was sealed to an offline key this client does not have.",
    "warn_prekey_expired": "The relay handed out an expired key of {sender_or_someone} for offline messages. "
    "It is not used.",
    "warn_stale_mail": "A waiting message{from_sender} is older than any mailbox keeps mail: the relay held it "
    "back. It is not shown.",
    "warn_room_stale_head": "The room's members changed since your copy of its member list; your message waits "
    "until the new list is checked.",
    "warn_room_label_moved": "The relay offers a different room under a room name you already know; "
    "the two are kept apart.",
    "warn_room_key_mismatch": "A room lists {sender_or_someone} with a different key than the one you know; "
    "nothing is sent to that key until you accept it.",
    "warn_other": "Something failed a check; it is not shown as a message.",
    "warn_room_bad_log": "The relay served a room's membership log with an entry that does not verify. "
    "It is refused; the room keeps the members it had.",
    "warn_room_fork": "The relay showed this room's membership differently to different people (a fork). "
    "Compare the room with the others before trusting who is in it.",
    "warn_room_fork_claimed": "A member's message named another version of this room's member list; it is "
    "not shown, and your messages to the room wait a little while that is checked.",
    "warn_room_withheld": "The relay is holding back a change to this room's membership.",
    "warn_room_not_accepted": "A message came in a room whose invitation you declined, or that was let go for "
    "newer ones; it is not shown or kept. To accept the room after all, type /join and its name.",
    "warn_room_not_a_member": "The relay announced {sender_or_someone} as a member of this room, but the signed "
    "membership does not include them. Nothing is encrypted to them.",
    "warn_room_label_changed": "The relay renamed this room; the name its creator signed is kept.",
    "warn_room_refused": "The relay refused a change to this room.",
    "why_not_connected": "not connected",
    "why_mailbox_full": "their mailbox on the relay is full",
    "why_sender_quota": "you have already left them as many messages as the relay keeps from one person",
    "why_no_mailbox": "their client keeps no mailbox on this relay (an older version)",
    "why_duplicate": "the same person twice",
    "why_key_changed": "their identity key changed; accept it or verify first",
    "why_bad_prekey": "their key for offline messages does not verify",
    "why_not_verified": "not verified, and strict mode is on",
    "why_away_from_room": "not connected, and no mailbox on this relay to wait in",
    "why_other": "refused on the way",
    "why_not_present": "not connected (they had just left another relay of this cluster)",
    "why_cluster_down": "their relay cannot be reached from yours right now",
    "why_no_report": "their relay did not confirm it in time",
    "why_refused": "their relay could not hand it on (their connection was full or closing)",
    "from_sender": " from {sender}",
    "someone": "someone",
}

ES: dict[str, str] = {
    "not_in_room": "{name} no está en la sala.",
    "reason_key_changed": "la clave de {name} ha cambiado; acéptala o verifícala antes",
    "reason_disconnected": "sin conexión con el relé",
    "reason_refused": "no responde nada ahí (¿está el relé en marcha?)",
    "reason_timeout": "no hay respuesta",
    "reason_shutdown": "el relé se ha parado o se está reiniciando",
    "reason_lost": "se perdió la conexión con el relé",
    "reason_closed": "has cerrado la conexión",
    "reason_alone": "no hay nadie más en la sala",
    "reason_name_taken": "otra persona usa tu nombre en este relé",
    "reason_identity_in_use": "otra sesión de tu clave de identidad está conectada a este relé "
    "(otro dispositivo o ventana); solo una a la vez",
    "reason_cluster_down": "el relé no llega al almacén que comparte con los demás relés de su grupo, "
    "así que ahora no deja entrar a nadie",
    "reason_tls_needed": "el relé usa TLS; arranca con --tls",
    "reason_not_tls": "el relé no usa TLS; arranca sin --tls",
    "reason_tls_untrusted": "el certificado del relé no es de confianza; indica su CA con --cafile ARCHIVO",
    "reason_other": "algo ha fallado",
    "warn_decrypt_failed": "Un mensaje{from_sender} no se pudo descifrar: se alteró por el camino o iba cifrado "
    "para otra persona. No se muestra.",
    "warn_bad_signature": "Un mensaje{from_sender} tiene una firma que no coincide: puede ser falso. No se muestra.",
    "warn_sender_mismatch": "Un mensaje dice venir de alguien distinto de quien lo envió. No se muestra.",
    "warn_not_addressed_to_me": "El relé te entregó un mensaje{from_sender} que no iba dirigido a ti. No se muestra.",
    "warn_replay": "Un mensaje{from_sender} ha llegado por segunda vez (una repetición). La copia no se muestra.",
    "warn_gap": "Algunos mensajes{from_sender} no llegaron: el relé los descartó o se perdieron.",
    "warn_malformed_message": "Un mensaje{from_sender} está dañado y no se puede leer. No se muestra.",
    "warn_recipient_key_mismatch": "Un mensaje{from_sender} iba cifrado para claves que no son las tuyas. "
    "No se muestra.",
    "warn_unknown_sender": "Ha llegado un mensaje de alguien que no está en la sala. No se muestra.",
    "warn_stale_session": "El relé presentó una sesión antigua de {sender_or_someone}. Se ignora.",
    "warn_stale_certificate": "El relé presentó un certificado de clave caducado de {sender_or_someone}. Se ignora.",
    "warn_impersonation": "El relé presentó a alguien con la clave de otra persona (o la tuya). Se ignora.",
    "warn_duplicate_name": "El relé presentó el mismo nombre dos veces o un nombre que imita a otro. Se ignora.",
    "warn_bad_name": "El relé presentó a alguien con un nombre que no cumple las reglas. Se ignora.",
    "warn_bad_certificate": "El certificado de clave de alguien no es válido. Se ignora.",
    "warn_bad_public_key": "La clave de alguien no es una clave válida. Se ignora.",
    "warn_roster_full": "La sala tiene más miembros de los que acepta este cliente; algunos no se muestran.",
    "warn_protocol_error": "El relé envió algo que este cliente no entiende.",
    "warn_relay_error": "El relé ha informado de un error.",
    "warn_delivery_unknown": "El relé no confirmó uno de tus mensajes; puede que no haya llegado.",
    "warn_dropped": "El relé perdió algunos de tus mensajes antes de que llegaran; se envían de nuevo.",
    "warn_unconfirmed": "Uno de tus mensajes aún no está confirmado; se guarda y se envía de nuevo la próxima vez.",
    "warn_not_sent": "Uno de tus mensajes no se pudo enviar.",
    "warn_trust_store": "No se pudo guardar tu lista de claves conocidas.",
    "warn_saved_entry_unreadable": (
        "Algo guardado de tu última sesión (una sala, una invitación o una sala por comprobar) no se pudo leer"
        " y se ha dejado fuera; todo lo demás se ha conservado."
    ),
    "warn_saved_state_unreadable": (
        "Lo guardado de tu última sesión no se pudo abrir, así que Susurro ha empezado de cero: las salas que"
        " recordaba, las invitaciones pendientes, las salas por comprobar y los mensajes aún sin confirmar se"
        " han perdido, y tus contactos pueden ver tus mensajes contados de nuevo desde el principio. Vuelve a"
        " unirte a tus salas; el archivo dañado se ha guardado junto al nuevo (su nombre acaba en .unreadable)"
        " por si quieres recuperarlo o informar del fallo."
    ),
    "warn_internal_error": "Algo ha fallado dentro de Susurro; la conexión vuelve a empezar.",
    "warn_message_too_large": "Un mensaje{from_sender} es más grande de lo que acepta este cliente. No se muestra.",
    "warn_crypto_error": "Un mensaje{from_sender} no ha superado una comprobación criptográfica. No se muestra.",
    "warn_key_changed": "La clave de identidad de {sender_or_someone} ha cambiado; no se le envía nada hasta que "
    "la aceptes.",
    "warn_message_held": "Estás sin conexión: la línea se enviará cuando vuelva la sala.",
    "warn_bad_prekey": "Una clave que {sender_or_someone} publicó para mensajes sin conexión no es válida. No se usa.",
    "warn_prekey_exhausted": "A {sender_or_someone} no le quedan claves para mensajes sin conexión; "
    "inténtalo más tarde.",
    "warn_prekey_reused": "El relé entregó dos veces una clave de un solo uso de {sender_or_someone}. No se usa.",
    "warn_unknown_prekey": "Un mensaje{from_sender} iba cifrado para una clave sin conexión que este cliente no tiene.",
    "warn_prekey_expired": "El relé entregó una clave caducada de {sender_or_someone} para mensajes sin conexión. "
    "No se usa.",
    "warn_stale_mail": "Un mensaje en espera{from_sender} es más antiguo de lo que ningún buzón guarda el correo: "
    "el relé lo retuvo. No se muestra.",
    "warn_room_stale_head": "Los miembros de la sala han cambiado desde tu copia de la lista; tu mensaje espera "
    "hasta comprobar la nueva.",
    "warn_room_label_moved": "El relé ofrece otra sala con un nombre de sala que ya conoces; se mantienen separadas.",
    "warn_room_key_mismatch": "Una sala muestra a {sender_or_someone} con una clave distinta de la que conoces; "
    "no se le envía nada a esa clave hasta que la aceptes.",
    "warn_other": "Algo no ha superado una comprobación; no se muestra como mensaje.",
    "warn_room_bad_log": "El relé sirvió el registro de miembros de una sala con una entrada que no es válida. "
    "Se rechaza; la sala conserva los miembros que tenía.",
    "warn_room_fork": "El relé mostró los miembros de esta sala de forma distinta a distintas personas (una "
    "bifurcación). Compara la sala con los demás antes de fiarte de quién está en ella.",
    "warn_room_fork_claimed": "El mensaje de un miembro nombra otra versión de la lista de miembros de esta "
    "sala; no se muestra, y tus mensajes a la sala esperan un poco mientras se comprueba.",
    "warn_room_withheld": "El relé está reteniendo un cambio en los miembros de esta sala.",
    "warn_room_not_accepted": "Llegó un mensaje en una sala cuya invitación rechazaste, o que se descartó para "
    "dejar sitio a otras más nuevas; no se muestra ni se guarda. Para aceptar la sala igualmente, escribe /join y "
    "su nombre.",
    "warn_room_not_a_member": "El relé presentó a {sender_or_someone} como miembro de esta sala, pero la lista "
    "firmada no lo incluye. No se le cifra nada.",
    "warn_room_label_changed": "El relé cambió el nombre de esta sala; se mantiene el que firmó quien la creó.",
    "warn_room_refused": "El relé rechazó un cambio en esta sala.",
    "why_not_connected": "no estaba conectado",
    "why_mailbox_full": "su buzón en el relé está lleno",
    "why_sender_quota": "ya le has dejado tantos mensajes como el relé guarda de una persona",
    "why_no_mailbox": "su cliente no tiene buzón en este relé (una versión antigua)",
    "why_duplicate": "la misma persona dos veces",
    "why_key_changed": "su clave de identidad ha cambiado; acéptala o verifícala antes",
    "why_bad_prekey": "su clave para mensajes sin conexión no es válida",
    "why_not_verified": "sin verificar, y el modo estricto está activado",
    "why_away_from_room": "no estaba conectado, y no tiene buzón en este relé donde esperar",
    "why_other": "se rechazó por el camino",
    "why_not_present": "no estaba conectado (acababa de salir de otro relé de este grupo)",
    "why_cluster_down": "ahora mismo no se llega a su relé desde el tuyo",
    "why_no_report": "su relé no lo confirmó a tiempo",
    "why_refused": "su relé no pudo entregarlo (su conexión estaba llena o cerrándose)",
    "from_sender": " de {sender}",
    "someone": "alguien",
}

TABLES: dict[str, dict[str, str]] = {"en": EN, "es": ES}

#: The core's reasons (English) matched to a key: (regular expression, key); the first match wins.
#: A group named ``name`` fills the key's ``{name}``.
REASON_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), key)
    for pattern, key in (
        (r"(?P<name>[^\s']+)'s (?:identity )?key (?:has )?changed", "reason_key_changed"),
        (r"^(?P<name>\S+) is not in the room", "not_in_room"),
        (r"nobody else is in the room", "reason_alone"),
        (r"not connected", "reason_disconnected"),
        (r"wrong version number|http request|unexpected eof|tls.*plain|not speak tls", "reason_not_tls"),
        (r"certificate verify failed|--cafile", "reason_tls_untrusted"),
        (r"--tls|speaks tls|looks like tls", "reason_tls_needed"),
        (r"connection refused", "reason_refused"),
        (r"no answer|timed out|no welcome", "reason_timeout"),
        (r"shut down|shutdown|stopped by", "reason_shutdown"),
        (r"connection was closed", "reason_closed"),
        (r"connection (?:to the relay )?(?:was )?lost|closed the connection|reset by peer|broken pipe", "reason_lost"),
    )
)
#: Endings whose code says it all.
REASON_CODES: dict[ErrorCode | Ending, str] = {
    Ending.SHUTDOWN: "reason_shutdown",
    ErrorCode.NAME_TAKEN: "reason_name_taken",
    ErrorCode.IDENTITY_IN_USE: "reason_identity_in_use",
    ErrorCode.CLUSTER_DOWN: "reason_cluster_down",
}


def reason(text: str, code: EndCode | None = None, language: str = "en") -> str:
    """The core's reason for something not happening, in this language's plain words.

    The core says "not sent: …" itself sometimes; the views add their own
    "Not sent:", so that prefix is dropped first (never "not sent: not sent:").
    """
    table = TABLES.get(language, EN)
    while text.lower().startswith("not sent: "):
        text = text[len("not sent: ") :]
    said = REASON_CODES.get(code) if isinstance(code, (ErrorCode, Ending)) else None
    if said is not None:
        return table[said]
    for pattern, key in REASON_PATTERNS:
        match = pattern.search(text)
        if match:
            return table[key].format(**match.groupdict())
    return table["reason_other"].format(detail=text)


def warning(kind: str, *, sender: str = "", language: str = "en") -> str:
    """A failed check in words: what happened and what was done, never the internal kind."""
    table = TABLES.get(language, EN)
    key = f"warn_{kind}" if f"warn_{kind}" in table else "warn_other"
    from_sender = table["from_sender"].format(sender=sender) if sender else ""
    return table[key].format(from_sender=from_sender, sender_or_someone=sender or table["someone"])


def why(code: str, language: str = "en") -> str:
    """Why a copy did not reach someone, from the relay's or the core's reason code, in plain words;
    a reason that is no known code (already a sentence) is said as it is."""
    return TABLES.get(language, EN).get(f"why_{code}", code)
