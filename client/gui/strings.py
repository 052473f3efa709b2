"""Every word the GUI shows, in English and Spanish, and how the language is picked.

Strings are looked up by key and filled with ``str.format`` fields, so both
tables must have the same keys and the same fields (a unit test checks that).
Spanish because the class this chat came from was taught in Spanish.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

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
    "err_name_taken": "Someone is already connected as {name}. Pick another name.",
    "err_bad_address": "That relay address is not valid: {detail}",
    "err_unreachable": "Cannot reach the relay: {detail}",
    "err_refused": "The relay refused to let you in: {detail}",
    "err_no_welcome": "The relay did not answer within {seconds} s.",
    "err_identity": "Cannot use the identity key file: {detail}",
    "err_passphrase_required": "This key file is protected: type its passphrase.",
    "err_wrong_passphrase": "Wrong passphrase for this key file.",
    "err_trust_store": "Cannot open the list of known keys: {detail}",
    "err_tls": "Cannot set up TLS: {detail}",
    # main window
    "room_tab": "Room",
    "roster_title": "People here",
    "col_name": "Name",
    "col_fingerprint": "Fingerprint",
    "col_trust": "Trust",
    "you_suffix": "{name} (you)",
    "trust_self": "you",
    "trust_new": "new",
    "trust_pinned": "seen before",
    "trust_verified": "verified",
    "trust_changed": "KEY CHANGED",
    "verify_button": "Verify…",
    "message_button": "Message",
    "send_button": "Send",
    "entry_hint": "Enter sends, Shift+Enter adds a line, /msg NAME TEXT sends a direct message.",
    "joined_notice": "{name} joined (fingerprint {fingerprint})",
    "left_notice": "{name} left",
    "here_notice": "In the room: {names}",
    "alone_notice": "Nobody else is here yet.",
    "you_joined": "You joined as {name}. Your fingerprint: {fingerprint}",
    "you": "you",
    "reconnected": "Reconnected to {relay} (new session key).",
    "direct_to": "{sender} → {recipient}",
    "delivered_to": "✓ delivered to {names}",
    "not_delivered_to": "not delivered to: {names}",
    "not_encrypted_to": "not encrypted to: {names}",
    "not_sent": "not sent: {reason}",
    "sending": "sending…",
    "badge_verified": "✓ verified",
    "badge_changed": "key changed",
    "badge_new": "new",
    "usage_msg": "usage: /msg NAME TEXT",
    "unknown_command": "unknown command /{command}; commands: /msg NAME TEXT",
    "not_in_room": "{name} is not in the room",
    # status bar
    "status_connecting": "connecting to {relay}…",
    "status_connected": "connected to {relay}",
    "status_reconnecting": "connection lost; reconnecting in {delay} s (attempt {attempt})",
    "status_disconnected": "disconnected: {reason}",
    "status_fingerprint": "your fingerprint: {fingerprint}",
    "status_e2e": "end-to-end encrypted",
    "sending_disabled": "Sending is off: {reason}",
    "reason_reconnecting": "reconnecting to the relay",
    "reason_disconnected": "not connected to the relay",
    "reason_key_changed": "{name}'s key changed; accept it or verify first",
    # banners (warnings)
    "banner_warning": "Warning ({kind}): {detail}",
    "banner_key_changed": "{name}'s identity key changed (was {old}, now {new}). Messages to {name} are blocked "
    "until you accept the new key; check with them first.",
    "accept_key": "Accept new key",
    "dismiss": "Dismiss",
    # verify dialog
    "verify_title": "Verify {name}",
    "verify_intro": "Compare this safety number with {name}, in person or on a call. "
    "If it matches on both screens, nobody is in the middle.",
    "verify_unavailable": "No safety number: {name} is no longer in the room.",
    "their_fingerprint": "{name}'s fingerprint: {fingerprint}",
    "your_fingerprint": "Your fingerprint: {fingerprint}",
    "mark_verified": "Mark as verified",
    "already_verified": "{name} is verified.",
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
    "err_name_taken": "Ya hay alguien conectado como {name}. Elige otro nombre.",
    "err_bad_address": "La dirección del relé no es válida: {detail}",
    "err_unreachable": "No se puede contactar con el relé: {detail}",
    "err_refused": "El relé no te deja entrar: {detail}",
    "err_no_welcome": "El relé no respondió en {seconds} s.",
    "err_identity": "No se puede usar el archivo de clave: {detail}",
    "err_passphrase_required": "Este archivo de clave está protegido: escribe su frase de paso.",
    "err_wrong_passphrase": "Frase de paso incorrecta para este archivo de clave.",
    "err_trust_store": "No se puede abrir la lista de claves conocidas: {detail}",
    "err_tls": "No se puede preparar TLS: {detail}",
    "room_tab": "Sala",
    "roster_title": "Personas aquí",
    "col_name": "Nombre",
    "col_fingerprint": "Huella",
    "col_trust": "Confianza",
    "you_suffix": "{name} (tú)",
    "trust_self": "tú",
    "trust_new": "nueva",
    "trust_pinned": "ya vista",
    "trust_verified": "verificada",
    "trust_changed": "CLAVE CAMBIADA",
    "verify_button": "Verificar…",
    "message_button": "Mensaje",
    "send_button": "Enviar",
    "entry_hint": "Intro envía, Mayús+Intro añade una línea, /msg NOMBRE TEXTO envía un mensaje directo.",
    "joined_notice": "{name} ha entrado (huella {fingerprint})",
    "left_notice": "{name} se ha ido",
    "here_notice": "En la sala: {names}",
    "alone_notice": "Todavía no hay nadie más.",
    "you_joined": "Has entrado como {name}. Tu huella: {fingerprint}",
    "you": "tú",
    "reconnected": "Reconectado a {relay} (nueva clave de sesión).",
    "direct_to": "{sender} → {recipient}",
    "delivered_to": "✓ entregado a {names}",
    "not_delivered_to": "no entregado a: {names}",
    "not_encrypted_to": "no cifrado para: {names}",
    "not_sent": "no enviado: {reason}",
    "sending": "enviando…",
    "badge_verified": "✓ verificado",
    "badge_changed": "clave cambiada",
    "badge_new": "nuevo",
    "usage_msg": "uso: /msg NOMBRE TEXTO",
    "unknown_command": "orden desconocida /{command}; órdenes: /msg NOMBRE TEXTO",
    "not_in_room": "{name} no está en la sala",
    "status_connecting": "conectando con {relay}…",
    "status_connected": "conectado a {relay}",
    "status_reconnecting": "conexión perdida; reconectando en {delay} s (intento {attempt})",
    "status_disconnected": "desconectado: {reason}",
    "status_fingerprint": "tu huella: {fingerprint}",
    "status_e2e": "cifrado de extremo a extremo",
    "sending_disabled": "No se puede enviar: {reason}",
    "reason_reconnecting": "reconectando con el relé",
    "reason_disconnected": "sin conexión con el relé",
    "reason_key_changed": "la clave de {name} ha cambiado; acéptala o verifícala antes",
    "banner_warning": "Aviso ({kind}): {detail}",
    "banner_key_changed": "La clave de identidad de {name} ha cambiado (era {old}, ahora {new}). Los mensajes a "
    "{name} están bloqueados hasta que aceptes la nueva clave; compruébalo antes con esa persona.",
    "accept_key": "Aceptar la nueva clave",
    "dismiss": "Cerrar aviso",
    "verify_title": "Verificar a {name}",
    "verify_intro": "Compara este número de seguridad con {name}, en persona o por teléfono. "
    "Si coincide en las dos pantallas, no hay nadie en medio.",
    "verify_unavailable": "No hay número de seguridad: {name} ya no está en la sala.",
    "their_fingerprint": "Huella de {name}: {fingerprint}",
    "your_fingerprint": "Tu huella: {fingerprint}",
    "mark_verified": "Marcar como verificado",
    "already_verified": "{name} está verificado.",
    "close": "Cerrar",
    "no_display": "susurro: no hay pantalla gráfica ({detail}); usa el cliente de terminal: susurro-cli",
    "no_tkinter": "susurro: Tkinter no está instalado ({detail}); instala python3-tk o usa el cliente de "
    "terminal: susurro-cli",
}

TABLES: dict[str, dict[str, str]] = {"en": EN, "es": ES}


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
