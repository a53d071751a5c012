relance_blank(code_module) or relance_blank(code_presentation)
or (($modules::varchar[] is null or list_contains($modules::varchar[], trim(code_module)))
    and ($presentations::varchar[] is null or list_contains($presentations::varchar[], trim(code_presentation))))
