"""Every word the GUI shows, in English and Spanish, and how the language is picked.

Strings are looked up by key and filled with ``str.format`` fields, so both
tables must have the same keys and the same fields (a unit test checks that).
Spanish because the class this chat came from was taught in Spanish.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from susurro.client.events import EndCode, Ending
from susurro.protocol import ErrorCode

LANGUAGES = ("en", "es")

EN: dict[str, str] = {
    "app_title": "Susurro",
    "window_title": "Susurro: {name}",
    # sign-in dialog
    "signin_title": "Susurro: sign in",
    "signin_intro": "End-to-end encrypted group chat over a blind relay.",
    "field_name": "Your name",
    "field_relay": "Relay address",
    "field_identity": "Identity key file",
    "field_passphrase": "Passphrase",
    "identity_hint": "Leave empty to use (or create) the key for this name.",
    "passphrase_hint": "This key file is protected by a passphrase.",
    "browse": "Browse…",
    "connect": "Connect",
    "cancel": "Cancel",
    "connecting_to": "Connecting to {relay}…",
    "started_local_relay": "No relay was running on {relay}; started one inside this window.",
    "created_key": "Created a new identity key in {path}",
    "err_name_empty": "Type a name.",
    "err_bad_name": "That name is not allowed: {detail}",
    "err_name_space": "Names cannot contain spaces; use _ or - instead (ana_maria).",
    "err_name_rules": "Names use letters, digits and _ - . only, up to 32 characters.",
    "err_name_taken": "Someone is already connected as {name}. Pick another name.",
    "err_bad_address": "That relay address is not valid: {detail}",
    "err_unreachable": "Cannot reach the relay at {relay}: {detail}",
    "err_refused": "The relay refused to let you in: {detail}",
    "err_no_welcome": "The relay did not answer within {seconds} s.",
    "err_identity": "Cannot use the identity key file: {detail}",
    "err_passphrase_required": "This key file is protected: type its passphrase.",
    "err_wrong_passphrase": "Wrong passphrase for this key file.",
    "err_trust_store": "Cannot open the list of known keys: {detail}",
    "err_tls": "Cannot set up TLS: {detail}",
    # main window
    "room_tab": "Room",
    "room_header": "Room · {count} here",
    "conversations_title": "Conversations",
    "roster_title": "People here",
    "you_suffix": "{name} (you)",
    "trust_self": "you",
    "trust_new": "new",
    "trust_pinned": "seen before",
    "trust_verified": "verified",
    "trust_changed": "KEY CHANGED",
    "trust_new_long": "new: first time this key is seen; not verified yet",
    "trust_pinned_long": "seen before: the same key as last time; not verified",
    "trust_verified_long": "verified: you compared safety numbers",
    "trust_changed_long": "key changed: nothing is sent to them until you accept the new key",
    "tooltip_self": "{name} (you)\nYour fingerprint: {fingerprint}",
    "tooltip_member": "{name}\nFingerprint: {fingerprint}\n{trust}",
    "verify_button": "Verify…",
    "message_button": "Message",
    "send_button": "Send",
    "entry_hint": "Enter sends · Shift+Enter new line · Ctrl+K go to · /help",
    "new_messages_pill": "new messages ↓",
    "unread_marker": "new messages",
    "joined_notice": "{name} joined (fingerprint {fingerprint})",
    "left_notice": "{name} left",
    "here_notice": "In the room: {names}",
    "alone_notice": "Nobody else is here yet.",
    "you_joined": "You joined as {name}. Your fingerprint: {fingerprint}",
    "you": "you",
    "reconnected": "Back in the room on {relay} (new session key).",
    "held_notice": "You are offline: this message will be sent when the room is back.",
    "delivered_to": "✓ delivered to {names}",
    "not_delivered_to": "not delivered to: {names}",
    "not_encrypted_to": "not encrypted to: {names}",
    "not_sent": "Not sent: {reason}",
    "sending": "sending…",
    "usage_msg": "To send a direct message, type /msg, a name, then the text.",
    "unknown_command": "There is no /{command} command. Commands: /msg NAME TEXT",
    "not_in_room": "{name} is not in the room.",
    "day_today": "Today",
    "day_yesterday": "Yesterday",
    "day_other": "{weekday}, {day} {month} {year}",
    "weekdays": "Monday,Tuesday,Wednesday,Thursday,Friday,Saturday,Sunday",
    "months": "January,February,March,April,May,June,July,August,September,October,November,December",
    # settings menu, jump dialog, notifications
    "menu_button": "☰",
    "setting_notifications": "Desktop notifications",
    "setting_dark": "Dark theme",
    "jump_title": "Go to a conversation",
    "jump_hint": "Type part of a name, then Enter.",
    "notify_title": "{sender} ({where})",
    "notify_direct": "direct message",
    # status bar
    "status_connecting": "connecting to {relay}…",
    "status_connected": "connected to {relay}",
    "status_reconnecting": "connection lost; trying again in {delay} s",
    "status_disconnected": "disconnected: {reason}",
    "status_fingerprint": "your fingerprint: {fingerprint}",
    "status_e2e": "end-to-end encrypted",
    "status_not_connected": "not connected",
    "sending_disabled": "Sending is off: {reason}",
    "reason_reconnecting": "reconnecting to the relay",
    "reason_disconnected": "not connected to the relay",
    "reason_key_changed": "{name}'s key changed; accept it or verify first",
    "reconnect_button": "Reconnect",
    # banners (warnings)
    "banner_key_changed": "{name}'s identity key changed (was {old}, now {new}). Messages to {name} are blocked "
    "until you accept the new key; check with them first.",
    "accept_key": "Accept new key",
    "dismiss": "Dismiss",
    # verify dialog
    "verify_title": "Verify {name}",
    "verify_intro": "Compare this safety number with {name}, in person or on a call. "
    "If it matches on both screens, nobody is in the middle.",
    "verify_unavailable": "No safety number: {name} is no longer in the room.",
    "their_fingerprint": "{name}'s fingerprint:",
    "your_fingerprint": "Your fingerprint:",
    "mark_verified": "Mark as verified",
    "already_verified": "{name} is verified.",
    "legend_title": "What the shields mean",
    "close": "Close",
    # command line
    "no_display": "susurro: no graphical display available ({detail}); use the terminal client instead: susurro-cli",
    "no_tkinter": "susurro: Tkinter is not installed ({detail}); install python3-tk, or use the terminal client: "
    "susurro-cli",
}

ES: dict[str, str] = {
    "app_title": "Susurro",
    "window_title": "Susurro: {name}",
    "signin_title": "Susurro: entrar",
    "signin_intro": "Chat de grupo cifrado de extremo a extremo sobre un relé ciego.",
    "field_name": "Tu nombre",
    "field_relay": "Dirección del relé",
    "field_identity": "Archivo de clave de identidad",
    "field_passphrase": "Frase de paso",
    "identity_hint": "Déjalo vacío para usar (o crear) la clave de este nombre.",
    "passphrase_hint": "Este archivo de clave está protegido con una frase de paso.",
    "browse": "Buscar…",
    "connect": "Conectar",
    "cancel": "Cancelar",
    "connecting_to": "Conectando con {relay}…",
    "started_local_relay": "No había ningún relé en {relay}; se ha iniciado uno dentro de esta ventana.",
    "created_key": "Se ha creado una nueva clave de identidad en {path}",
    "err_name_empty": "Escribe un nombre.",
    "err_bad_name": "Ese nombre no está permitido: {detail}",
    "err_name_space": "Los nombres no pueden tener espacios; usa _ o - (ana_maria).",
    "err_name_rules": "Los nombres solo llevan letras, números y _ - ., hasta 32 caracteres.",
    "err_name_taken": "Ya hay alguien conectado como {name}. Elige otro nombre.",
    "err_bad_address": "La dirección del relé no es válida: {detail}",
    "err_unreachable": "No se puede contactar con el relé en {relay}: {detail}",
    "err_refused": "El relé no te deja entrar: {detail}",
    "err_no_welcome": "El relé no respondió en {seconds} s.",
    "err_identity": "No se puede usar el archivo de clave: {detail}",
    "err_passphrase_required": "Este archivo de clave está protegido: escribe su frase de paso.",
    "err_wrong_passphrase": "Frase de paso incorrecta para este archivo de clave.",
    "err_trust_store": "No se puede abrir la lista de claves conocidas: {detail}",
    "err_tls": "No se puede preparar TLS: {detail}",
    "room_tab": "Sala",
    "room_header": "Sala · {count} aquí",
    "conversations_title": "Conversaciones",
    "roster_title": "Personas aquí",
    "you_suffix": "{name} (tú)",
    "trust_self": "tú",
    "trust_new": "nueva",
    "trust_pinned": "ya vista",
    "trust_verified": "verificada",
    "trust_changed": "CLAVE CAMBIADA",
    "trust_new_long": "nueva: es la primera vez que se ve esta clave; aún sin verificar",
    "trust_pinned_long": "ya vista: la misma clave que la última vez; sin verificar",
    "trust_verified_long": "verificada: habéis comparado los números de seguridad",
    "trust_changed_long": "clave cambiada: no se le envía nada hasta que aceptes la nueva clave",
    "tooltip_self": "{name} (tú)\nTu huella: {fingerprint}",
    "tooltip_member": "{name}\nHuella: {fingerprint}\n{trust}",
    "verify_button": "Verificar…",
    "message_button": "Mensaje",
    "send_button": "Enviar",
    "entry_hint": "Intro envía · Mayús+Intro nueva línea · Ctrl+K ir a · /help",
    "new_messages_pill": "mensajes nuevos ↓",
    "unread_marker": "mensajes nuevos",
    "joined_notice": "{name} ha entrado (huella {fingerprint})",
    "left_notice": "{name} se ha ido",
    "here_notice": "En la sala: {names}",
    "alone_notice": "Todavía no hay nadie más.",
    "you_joined": "Has entrado como {name}. Tu huella: {fingerprint}",
    "you": "tú",
    "reconnected": "De vuelta en la sala en {relay} (nueva clave de sesión).",
    "held_notice": "Estás sin conexión: este mensaje se enviará cuando vuelva la sala.",
    "delivered_to": "✓ entregado a {names}",
    "not_delivered_to": "no entregado a: {names}",
    "not_encrypted_to": "no cifrado para: {names}",
    "not_sent": "No enviado: {reason}",
    "sending": "enviando…",
    "usage_msg": "Para un mensaje directo escribe /msg, un nombre y el texto.",
    "unknown_command": "No existe la orden /{command}. Órdenes: /msg NOMBRE TEXTO",
    "not_in_room": "{name} no está en la sala.",
    "day_today": "Hoy",
    "day_yesterday": "Ayer",
    "day_other": "{weekday}, {day} de {month} de {year}",
    "weekdays": "lunes,martes,miércoles,jueves,viernes,sábado,domingo",
    "months": "enero,febrero,marzo,abril,mayo,junio,julio,agosto,septiembre,octubre,noviembre,diciembre",
    "menu_button": "☰",
    "setting_notifications": "Notificaciones de escritorio",
    "setting_dark": "Tema oscuro",
    "jump_title": "Ir a una conversación",
    "jump_hint": "Escribe parte de un nombre y pulsa Intro.",
    "notify_title": "{sender} ({where})",
    "notify_direct": "mensaje directo",
    "status_connecting": "conectando con {relay}…",
    "status_connected": "conectado a {relay}",
    "status_reconnecting": "conexión perdida; nuevo intento en {delay} s",
    "status_disconnected": "desconectado: {reason}",
    "status_fingerprint": "tu huella: {fingerprint}",
    "status_e2e": "cifrado de extremo a extremo",
    "status_not_connected": "sin conexión",
    "sending_disabled": "No se puede enviar: {reason}",
    "reason_reconnecting": "reconectando con el relé",
    "reason_disconnected": "sin conexión con el relé",
    "reason_key_changed": "la clave de {name} ha cambiado; acéptala o verifícala antes",
    "reconnect_button": "Reconectar",
    "banner_key_changed": "La clave de identidad de {name} ha cambiado (era {old}, ahora {new}). Los mensajes a "
    "{name} están bloqueados hasta que aceptes la nueva clave; compruébalo antes con esa persona.",
    "accept_key": "Aceptar la nueva clave",
    "dismiss": "Cerrar aviso",
    "verify_title": "Verificar a {name}",
    "verify_intro": "Compara este número de seguridad con {name}, en persona o por teléfono. "
    "Si coincide en las dos pantallas, no hay nadie en medio.",
    "verify_unavailable": "No hay número de seguridad: {name} ya no está en la sala.",
    "their_fingerprint": "Huella de {name}:",
    "your_fingerprint": "Tu huella:",
    "mark_verified": "Marcar como verificado",
    "already_verified": "{name} está verificado.",
    "legend_title": "Qué significan los escudos",
    "close": "Cerrar",
    "no_display": "susurro: no hay pantalla gráfica ({detail}); usa el cliente de terminal: susurro-cli",
    "no_tkinter": "susurro: Tkinter no está instalado ({detail}); instala python3-tk o usa el cliente de "
    "terminal: susurro-cli",
}

#: Why something did not happen, in the user's language: the core's reasons
#: (English, for logs and --json) are matched here by code or by pattern.
EN.update({
    "reason_refused": "nothing answers there (is the relay running?)",
    "reason_timeout": "no answer",
    "reason_shutdown": "the relay was stopped or is restarting",
    "reason_lost": "the connection to the relay was lost",
    "reason_closed": "you closed the connection",
    "reason_alone": "nobody else is in the room",
    "reason_name_taken": "someone else is using your name on this relay",
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
    "warn_not_sent": "One of your messages could not be sent.",
    "warn_trust_store": "Your list of known keys could not be saved.",
    "warn_internal_error": "Something went wrong inside Susurro; the connection starts over.",
    "warn_other": "Something failed a check; it is not shown as a message.",
    "from_sender": " from {sender}",
    "someone": "someone",
})
ES.update({
    "reason_refused": "no responde nada ahí (¿está el relé en marcha?)",
    "reason_timeout": "no hay respuesta",
    "reason_shutdown": "el relé se ha parado o se está reiniciando",
    "reason_lost": "se perdió la conexión con el relé",
    "reason_closed": "has cerrado la conexión",
    "reason_alone": "no hay nadie más en la sala",
    "reason_name_taken": "otra persona usa tu nombre en este relé",
    "reason_tls_needed": "el relé usa TLS; arranca con --tls",
    "reason_not_tls": "el relé no usa TLS; arranca sin --tls",
    "reason_tls_untrusted": "el certificado del relé no es de confianza; indica su CA con --cafile ARCHIVO",
    "reason_other": "algo ha fallado",
    "warn_decrypt_failed": "Un mensaje{from_sender} no se pudo descifrar: se alteró por el camino o iba cifrado "
    "para otra persona. No se muestra.",
    "warn_bad_signature": "Un mensaje{from_sender} tiene una firma que no coincide: puede ser falso. No se muestra.",
    "warn_sender_mismatch": "Un mensaje dice venir de alguien distinto de quien lo envió. No se muestra.",
    "warn_not_addressed_to_me": "El relé te entregó un mensaje{from_sender} que no iba dirigido a ti. "
    "No se muestra.",
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
    "warn_not_sent": "Uno de tus mensajes no se pudo enviar.",
    "warn_trust_store": "No se pudo guardar tu lista de claves conocidas.",
    "warn_internal_error": "Algo ha fallado dentro de Susurro; la conexión vuelve a empezar.",
    "warn_other": "Algo no ha superado una comprobación; no se muestra como mensaje.",
    "from_sender": " de {sender}",
    "someone": "alguien",
})

TABLES: dict[str, dict[str, str]] = {"en": EN, "es": ES}

#: The core's reasons (English) matched to a key: (regular expression, key); the first match wins.
#: A group named ``name`` fills the key's ``{name}``.
_REASON_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
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
        (r"connection (?:to the relay )?(?:was )?lost|closed the connection|reset by peer|broken pipe",
         "reason_lost"),
    )
)
#: Relay codes that say it all.
_REASON_CODES: dict[EndCode, str] = {Ending.SHUTDOWN: "reason_shutdown", ErrorCode.NAME_TAKEN: "reason_name_taken"}


def pick_language(requested: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """``--lang`` if given, else the locale from the usual variables, else English.

    Follows the POSIX precedence (LC_ALL, LC_MESSAGES, LANG) without calling
    ``setlocale``, which would change process-wide state behind Tk's back.
    """
    if requested in LANGUAGES:
        return requested
    env = os.environ if environ is None else environ
    for variable in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(variable, "")
        if value:
            return "es" if value.lower().startswith("es") else "en"
    return "en"


class Strings:
    """``strings("joined_notice", name=...)``: one language's table, filled in."""

    def __init__(self, language: str = "en") -> None:
        self.language = language if language in TABLES else "en"
        self._table = TABLES[self.language]

    def __call__(self, key: str, **fields: object) -> str:
        return self._table[key].format(**fields)

    def reason(self, text: str, code: EndCode | None = None) -> str:
        """The core's reason for something not happening, in this language's plain words.

        The core says "not sent: …" itself sometimes; the views add their own
        "Not sent:", so that prefix is dropped first (never "not sent: not sent:").
        """
        while text.lower().startswith("not sent: "):
            text = text[len("not sent: "):]
        if code in _REASON_CODES:
            return self(_REASON_CODES[code])
        for pattern, key in _REASON_PATTERNS:
            match = pattern.search(text)
            if match:
                return self(key, **match.groupdict())
        return self("reason_other", detail=text)

    def warning(self, kind: str, detail: str = "", *, sender: str = "") -> str:
        """A failed check in words: what happened and what was done, never the internal kind."""
        key = f"warn_{kind}" if f"warn_{kind}" in self._table else "warn_other"
        from_sender = self("from_sender", sender=sender) if sender else ""
        return self(key, from_sender=from_sender, sender_or_someone=sender or self("someone"))
