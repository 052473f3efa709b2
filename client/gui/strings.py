"""Every word the GUI shows, in English and Spanish, and how the language is picked.

Strings are looked up by key and filled with ``str.format`` fields, so both
tables must have the same keys and the same fields (a unit test checks that).
Spanish because the class this chat came from was taught in Spanish.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from susurro.client import wording
from susurro.client.events import EndCode

from . import room_strings

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
    "err_refused_retrying": (
        "The relay did not let you in: {reason}. It did not answer within {seconds} s of trying again. "
        "Try again in a while."
    ),
    "err_refused_gave_up": (
        "The relay did not let you in: {reason}. It still did not after {minutes} min of trying. Try again in a while."
    ),
    "connecting_refused": "Connecting to {relay}… The relay does not let you in yet: {reason}. Trying again "
    "in {delay} s.",
    "err_identity": "Cannot use the identity key file: {detail}",
    "err_passphrase_required": "This key file is protected: type its passphrase.",
    "err_wrong_passphrase": "Wrong passphrase for this key file.",
    "err_trust_store": "Cannot open the list of known keys: {detail}",
    "err_local_state": "Cannot open your history or offline keys on this computer: {detail}",
    "err_tls": "Cannot set up TLS: {detail}",
    "err_tls_needed": "The relay at {relay} hung up before greeting us. If it serves TLS, start susurro with "
    "--tls (or --cafile FILE).",
    # main window
    "room_tab": "Everyone here",
    "room_header": "Everyone here · {count}",
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
    "held_note": "waiting for the room to come back…",
    "held_hint": "Reconnecting: what you send now goes out once the room is back.",
    "note_delivered": "✓✓ delivered to {names}",
    "note_sent": "✓ sent to {names}",
    "note_waiting": "◷ waiting for {names}",
    "note_sending": "sending to {names}…",
    "note_not_delivered": "not delivered to {names}: {reason}",
    "note_not_encrypted": "not encrypted to {names}: {reason}",
    "note_nobody": "✓ sent",
    "detail_title": "Who has it:",
    "detail_delivered": "{name}: delivered (their client confirmed it)",
    "detail_sent": "{name}: on the relay and handed on; their client has not confirmed it yet",
    "detail_waiting": "{name}: waiting on the relay until they come back",
    "detail_sending": "{name}: sending…",
    "detail_not_delivered": "{name}: not delivered: {reason}",
    "detail_not_encrypted": "{name}: not encrypted to them: {reason}",
    "history_loading": "loading older messages…",
    "history_start": "start of the history kept on this computer",
    "history_refused": "{count} stored messages could not be opened; they are not shown.",
    "not_sent": "Not sent: {reason}",
    "sending": "sending…",
    "usage": "Type it as: {usage}",
    "who_line": "{name}: {fingerprint}…, {trust}",
    "help_intro": "Commands (the same as in the terminal client):",
    "help_line": "{usage}  {what}",
    "help_msg": "direct message to one member",
    "help_who": "list who is here, with fingerprints and trust",
    "help_verify": "compare safety numbers with NAME",
    "help_verified": "mark NAME verified (opens the safety number to compare first)",
    "help_accept": "accept NAME's changed identity key (compare safety numbers first)",
    "help_strict": "send only to verified members",
    "help_help": "this list",
    "help_quit": "leave",
    "strict_on": "Strict mode on: messages go only to verified members.",
    "strict_off": "Strict mode off: messages go to everyone here.",
    "usage_msg": "To send a direct message, type /msg, a name, then the text.",
    "unknown_command": "There is no /{command} command; /help lists them.",
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
    "status_refused_retrying": "not let in: {reason}; trying again in {delay} s",
    "status_disconnected": "disconnected: {reason}",
    "status_fingerprint": "your fingerprint: {fingerprint}",
    "status_e2e": "end-to-end encrypted",
    "status_not_connected": "not connected",
    "sending_disabled": "Sending is off: {reason}",
    "reason_reconnecting": "reconnecting to the relay",
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
    # closing with messages no receipt has confirmed yet
    "unconfirmed_title": "Messages not confirmed yet",
    "unconfirmed_intro_one": "One of your messages has no receipt yet:",
    "unconfirmed_intro": "{count} of your messages have no receipt yet:",
    "unconfirmed_line": "“{text}” to {names}",
    "unconfirmed_more": "…and {count} more",
    "unconfirmed_outro": "They are kept on this computer and sent again the next time you sign in.",
    "close_now": "Close",
    "keep_open": "Keep the window open",
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
    "connecting_refused": "Conectando con {relay}… El relé aún no te deja entrar: {reason}. Nuevo intento "
    "en {delay} s.",
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
    "err_refused_retrying": (
        "El relé no te dejó entrar: {reason}. No respondió en {seconds} s al nuevo intento. "
        "Inténtalo de nuevo más tarde."
    ),
    "err_refused_gave_up": (
        "El relé no te dejó entrar: {reason}. Seguía sin dejarte tras {minutes} min de intentos. "
        "Inténtalo de nuevo más tarde."
    ),
    "err_identity": "No se puede usar el archivo de clave: {detail}",
    "err_passphrase_required": "Este archivo de clave está protegido: escribe su frase de paso.",
    "err_wrong_passphrase": "Frase de paso incorrecta para este archivo de clave.",
    "err_trust_store": "No se puede abrir la lista de claves conocidas: {detail}",
    "err_local_state": "No se puede abrir tu historial ni tus claves sin conexión en este ordenador: {detail}",
    "err_tls": "No se puede preparar TLS: {detail}",
    "err_tls_needed": "El relé en {relay} colgó antes de saludar. Si usa TLS, arranca susurro con --tls "
    "(o --cafile ARCHIVO).",
    "room_tab": "Todos aquí",
    "room_header": "Todos aquí · {count}",
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
    "held_note": "esperando a que vuelva la sala…",
    "held_hint": "Reconectando: lo que envíes ahora saldrá cuando vuelva la sala.",
    "note_delivered": "✓✓ entregado a {names}",
    "note_sent": "✓ enviado a {names}",
    "note_waiting": "◷ esperando a {names}",
    "note_sending": "enviando a {names}…",
    "note_not_delivered": "no entregado a {names}: {reason}",
    "note_not_encrypted": "no cifrado para {names}: {reason}",
    "note_nobody": "✓ enviado",
    "detail_title": "Quién lo tiene:",
    "detail_delivered": "{name}: entregado (su cliente lo confirmó)",
    "detail_sent": "{name}: en el relé y reenviado; su cliente aún no lo ha confirmado",
    "detail_waiting": "{name}: esperando en el relé hasta que vuelva",
    "detail_sending": "{name}: enviando…",
    "detail_not_delivered": "{name}: no entregado: {reason}",
    "detail_not_encrypted": "{name}: no se le cifró: {reason}",
    "history_loading": "cargando mensajes anteriores…",
    "history_start": "inicio del historial guardado en este ordenador",
    "history_refused": "{count} mensajes guardados no se pudieron abrir; no se muestran.",
    "not_sent": "No enviado: {reason}",
    "sending": "enviando…",
    "usage": "Se escribe así: {usage}",
    "who_line": "{name}: {fingerprint}…, {trust}",
    "help_intro": "Órdenes (las mismas que en el cliente de terminal):",
    "help_line": "{usage}  {what}",
    "help_msg": "mensaje directo a una persona",
    "help_who": "quién está aquí, con huellas y confianza",
    "help_verify": "comparar los números de seguridad con NOMBRE",
    "help_verified": "marcar a NOMBRE como verificado (abre antes el número para compararlo)",
    "help_accept": "aceptar la nueva clave de identidad de NOMBRE (compara antes los números)",
    "help_strict": "enviar solo a personas verificadas",
    "help_help": "esta lista",
    "help_quit": "salir",
    "strict_on": "Modo estricto activado: los mensajes van solo a personas verificadas.",
    "strict_off": "Modo estricto desactivado: los mensajes van a todos los presentes.",
    "usage_msg": "Para un mensaje directo escribe /msg, un nombre y el texto.",
    "unknown_command": "No existe la orden /{command}; /help las muestra.",
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
    "status_refused_retrying": "no te deja entrar: {reason}; nuevo intento en {delay} s",
    "status_disconnected": "desconectado: {reason}",
    "status_fingerprint": "tu huella: {fingerprint}",
    "status_e2e": "cifrado de extremo a extremo",
    "status_not_connected": "sin conexión",
    "sending_disabled": "No se puede enviar: {reason}",
    "reason_reconnecting": "reconectando con el relé",
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
    "unconfirmed_title": "Mensajes aún sin confirmar",
    "unconfirmed_intro_one": "Uno de tus mensajes aún no tiene acuse de recibo:",
    "unconfirmed_intro": "{count} de tus mensajes aún no tienen acuse de recibo:",
    "unconfirmed_line": "«{text}» para {names}",
    "unconfirmed_more": "…y {count} más",
    "unconfirmed_outro": "Se guardan en este ordenador y se envían de nuevo la próxima vez que entres.",
    "close_now": "Cerrar",
    "keep_open": "Dejar la ventana abierta",
    "no_display": "susurro: no hay pantalla gráfica ({detail}); usa el cliente de terminal: susurro-cli",
    "no_tkinter": "susurro: Tkinter no está instalado ({detail}); instala python3-tk o usa el cliente de "
    "terminal: susurro-cli",
}

#: Reasons and failed checks in words come from the shared catalogue (the terminal uses it too).
EN.update(wording.EN)
ES.update(wording.ES)
EN.update(room_strings.EN)
ES.update(room_strings.ES)

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

    def usage(self, usage: str) -> str:
        """A command's usage line with its placeholders in this language (``/verify NOMBRE``)."""
        if self.language == "es":
            return usage.replace("NAME", "NOMBRE").replace("TEXT", "TEXTO").replace("LABEL", "SALA")
        return usage

    def reason(self, text: str, code: EndCode | None = None) -> str:
        """The core's reason for something not happening, in this language (``wording.reason``)."""
        return wording.reason(text, code, self.language)

    def warning(self, kind: str, detail: str = "", *, sender: str = "") -> str:
        """A failed check in words, never the internal kind (``wording.warning``)."""
        return wording.warning(kind, sender=sender, language=self.language)
